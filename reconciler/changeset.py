"""The result of one reconcile: what happened to each object, and why.

These are the values the SSA engine produces, the history store persists and the reports print.
Secret values never reach here unmasked: the engine masks them before building an entry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Action(enum.StrEnum):
    CREATED = "Created"
    CONFIGURED = "Configured"
    UNCHANGED = "Unchanged"
    SKIPPED = "Skipped"
    FAILED = "Failed"
    PRUNED = "Pruned"


# What makes an object count as drifted: the reconcile changed it (or, dry-run, would have).
DRIFT_ACTIONS = frozenset({Action.CREATED, Action.CONFIGURED, Action.PRUNED})


class Health(enum.StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"
    NOT_CHECKED = "NotChecked"


@dataclass(frozen=True, order=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def subject(self) -> str:
        """`Kind/namespace/name`, or `Kind/name` for cluster-scoped objects (Flux's form)."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        """(group, kind, namespace, name): the identity that survives an apiVersion bump."""
        return (self.group, self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class Attribution:
    """A field manager that owns a drifted field in the live object's managedFields."""

    manager: str
    operation: str  # "Apply" or "Update"
    time: str | None  # RFC 3339, as the API server wrote it


@dataclass(frozen=True)
class FieldDrift:
    """One field whose live value differs from Git. `path` is a dotted path like `.spec.replicas`."""

    path: str
    live: Any
    desired: Any
    owners: tuple[Attribution, ...] = ()


@dataclass(frozen=True)
class ChangeSetEntry:
    ref: ObjectRef
    action: Action
    health: Health = Health.NOT_CHECKED
    message: str = ""
    # RFC 6902 patch from live to desired (masked for Secrets); empty unless drifted.
    patch: tuple[dict[str, Any], ...] = ()
    fields: tuple[FieldDrift, ...] = ()
    # Repo path the object was rendered from (the `spindle.dev/source-path` annotation).
    source_path: str | None = None


@dataclass(frozen=True)
class Revision:
    sha: str
    author: str = ""
    time: str = ""  # RFC 3339
    message: str = ""

    @property
    def short(self) -> str:
        """The abbreviated sha people read in summaries (12 digits, like GitHub's longer form)."""
        return self.sha[:12]


@dataclass(frozen=True)
class PublishedApp:
    """A Spin project the reconcile published (`[application.tool.spindle] publish`): what the auditor
    needs to tie a running pod to a commit. `error` is set (and `reference` empty) when publishing failed."""

    project: str  # the spin.toml, repo-relative
    reference: str  # REG/REPO@sha256:…, the image the SpinApp pins
    digest: str
    commit: str  # the last commit that changed the project ("" when it has none)
    format: str = "spin"  # "spin" or "rootfs"
    pushed: bool = False  # False: the registry already had it (or a dry run pushed nothing)
    bytes_uploaded: int = 0
    error: str = ""


@dataclass
class ReconcileRecord:
    """One reconcile, as the auditors read it."""

    source: str
    revision: Revision | None
    started: str  # RFC 3339
    finished: str | None = None
    mode: str = "apply"  # "apply", "dry-run" or "detect-only"
    entries: list[ChangeSetEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    published: list[PublishedApp] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # the repo's render errors (also in `errors`)
    warnings: list[str] = field(default_factory=list)  # what went wrong without failing the run

    @property
    def drifted(self) -> list[ChangeSetEntry]:
        return [e for e in self.entries if e.action in DRIFT_ACTIONS]

    @property
    def ok(self) -> bool:
        return not self.errors and all(e.action is not Action.FAILED for e in self.entries)
