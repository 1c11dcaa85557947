"""What discovery hands to the renderers: the classified contents of a checkout.

`discovery.discover(root, subpath)` walks a checkout and returns a `RepoTree`; the render
pipeline turns it into manifests. Everything carries a `Location` so every error can name the
file, line and field it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from renderers.errors import Location, RenderError

if TYPE_CHECKING:
    from renderers.spintoml.lines import TomlLines
    from renderers.spintoml.model import App

# A Kubernetes object as parsed from YAML/JSON.
Obj = dict[str, Any]


@dataclass(frozen=True)
class SourceDoc:
    """One YAML document of the repo (or an object generated from a Spin project).

    `lines` maps dotted field paths ("spec.replicas", "spec.variables[0].name") to 1-based lines,
    so a schema or webhook error can point at the line of the offending field.
    """

    body: Obj
    location: Location
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = (self.body.get("metadata") or {}).get("namespace")
        return str(ns) if ns else None

    @property
    def subject(self) -> str:
        """`Kind/namespace/name` (or `Kind/name` when cluster-scoped or unset)."""
        ns = self.namespace
        return f"{self.kind}/{ns}/{self.name}" if ns else f"{self.kind}/{self.name}"

    def line_of(self, field_path: str) -> int | None:
        """The line of `field_path` or of its nearest known parent, else the document's line."""
        probe = field_path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return self.location.line

    def at(self, field_path: str) -> Location:
        return Location(self.location.path, self.line_of(field_path), field_path)


@dataclass(frozen=True)
class SpinProject:
    """A Spin project (`spin.toml`) of the checkout, parsed into the v2 model (v1 converted).

    `scaffolded` holds what its `[application.tool.spindle]` table scaffolds to (empty when it has
    no such table or the table is invalid; the errors are in `RepoTree.errors`).
    """

    location: Location  # the spin.toml, repo-relative
    app: App
    scaffolded: tuple[SourceDoc, ...] = ()
    lines: TomlLines | None = None  # for scaffolding it again with a published image
    project_dir: Path | None = None


@dataclass
class RepoTree:
    """The classified contents of a checkout. Errors are collected, never raised, so one broken
    file never hides the others."""

    root: Path
    spinapps: list[SourceDoc] = field(default_factory=list)
    executors: list[SourceDoc] = field(default_factory=list)
    shims: list[SourceDoc] = field(default_factory=list)
    others: list[SourceDoc] = field(default_factory=list)
    # SpinApps (and their Secrets / autoscaler objects) scaffolded from Spin projects'
    # [application.tool.spindle] tables.
    scaffolded: list[SourceDoc] = field(default_factory=list)
    errors: list[RenderError] = field(default_factory=list)
    # Every valid Spin project found (invalid ones are only in `errors`).
    projects: list[SpinProject] = field(default_factory=list)
