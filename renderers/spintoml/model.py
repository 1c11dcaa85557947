"""The typed model of a Spin application manifest (v2 shape; v1 manifests are converted to it).

Only what spindle uses is typed in detail; everything else Spin accepts is kept as-is in `extra`
fields so nothing is lost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class ExecutorType(enum.Enum):
    """How the HTTP trigger calls a component (`executor = { type = ... }`)."""

    SPIN = "spin"
    HTTP = "http"
    WAGI = "wagi"
    WASIP3_UNSTABLE = "wasip3-unstable"


@dataclass(frozen=True)
class Variable:
    """An application variable (`[variables]`)."""

    name: str
    default: str | None = None
    required: bool = False
    secret: bool = False
    description: str = ""


@dataclass(frozen=True)
class LocalSource:
    path: str  # relative to the spin.toml's directory


@dataclass(frozen=True)
class UrlSource:
    url: str
    digest: str


@dataclass(frozen=True)
class RegistrySource:
    package: str
    version: str
    registry: str | None = None


Source = LocalSource | UrlSource | RegistrySource


@dataclass(frozen=True)
class FileMount:
    """A `files` entry: a glob (`destination` None) or a `{ source, destination }` mapping."""

    source: str
    destination: str | None = None


@dataclass(frozen=True)
class BuildConfig:
    commands: tuple[str, ...]
    workdir: str | None = None
    watch: tuple[str, ...] = ()


@dataclass(frozen=True)
class Component:
    id: str
    source: Source
    description: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    files: tuple[FileMount, ...] = ()
    exclude_files: tuple[str, ...] = ()
    # Includes what the deprecated `allowed_http_hosts` (and manifest v1's defaults) allow,
    # converted as Spin does.
    allowed_outbound_hosts: tuple[str, ...] = ()
    allowed_http_hosts: tuple[str, ...] = ()  # deprecated; as written
    key_value_stores: tuple[str, ...] = ()
    sqlite_databases: tuple[str, ...] = ()
    ai_models: tuple[str, ...] = ()
    build: BuildConfig | None = None
    dependencies: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # targets, tool, dependencies_inherit...


@dataclass(frozen=True)
class HttpExecutor:
    type: ExecutorType = ExecutorType.SPIN
    argv: str | None = None
    entrypoint: str | None = None


@dataclass(frozen=True)
class StaticResponse:
    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class Trigger:
    """One `[[trigger.<type>]]` entry. `component` is the id of the component it runs (inline
    components are lifted into `App.components` under a generated id), or None for an HTTP
    trigger with a `static_response`."""

    type: str
    component: str | None
    id: str = ""
    route: str | None = None  # HTTP: the route text; None when private
    private: bool = False  # HTTP: `route = { private = true }`
    executor: HttpExecutor | None = None  # HTTP only
    static_response: StaticResponse | None = None  # HTTP only
    channel: str | None = None  # Redis
    config: dict[str, Any] = field(default_factory=dict)  # other type-specific keys


@dataclass(frozen=True)
class App:
    """A validated Spin application. `manifest_version` is the version the file was written in."""

    name: str
    manifest_version: int
    version: str = ""
    description: str = ""
    authors: tuple[str, ...] = ()
    targets: tuple[Any, ...] = ()
    variables: dict[str, Variable] = field(default_factory=dict)
    triggers: tuple[Trigger, ...] = ()
    components: dict[str, Component] = field(default_factory=dict)
    trigger_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # [application.trigger.*]
    tool: dict[str, dict[str, Any]] = field(default_factory=dict)  # [application.tool.*]

    @property
    def spindle(self) -> dict[str, Any] | None:
        """The `[application.tool.spindle]` table: spindle's deployment settings."""
        return self.tool.get("spindle")
