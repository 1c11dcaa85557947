"""Errors of the SSA engine.  Each names the object it is about; `kubesim.fields` maps them to an
HTTP `Status` (the package-wide tree is drawn in `kubesim.errors`).

::

    SSAError                      base; ``code``/``reason`` say which Status to send
    ├── ApplyBodyError            400 BadRequest: managedFields in an apply body, wrong apiVersion/kind
    ├── InvalidObjectError        422 Invalid: the object cannot be typed (duplicate list-map keys,
    │                             list-map item without its key, wrong value type, unknown field);
    │                             ``causes`` carry ``field`` paths
    ├── ConflictError             409 Conflict: fields owned by other managers would change
    └── PatchError                400 BadRequest: a strategic merge patch that cannot be applied
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cause:
    """One ``details.causes[]`` entry of a Kubernetes Status."""

    type: str
    message: str
    field: str


class SSAError(Exception):
    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, causes: tuple[Cause, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.causes = causes


class ApplyBodyError(SSAError):
    code = 400
    reason = "BadRequest"


class InvalidObjectError(SSAError):
    """The upstream message is kept verbatim (``failed to create typed patch object (...): ...``)."""

    code = 422
    reason = "Invalid"


class PatchError(SSAError):
    code = 400
    reason = "BadRequest"


@dataclass(frozen=True, slots=True)
class Conflict:
    """One conflicting field: its path as the API server prints it, and the other manager."""

    field: str
    manager: str
    operation: str
    api_version: str
    subresource: str = ""

    @property
    def manager_text(self) -> str:
        """``"mgr"`` for appliers; ``"mgr" using apps/v1`` for updaters (apimachinery printManager)."""
        text = '"' + self.manager.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


class ConflictError(SSAError):
    code = 409
    reason = "Conflict"

    def __init__(self, conflicts: list[Conflict], *, paths: list[tuple[str, ...]] | None = None) -> None:
        self.conflicts = conflicts
        #: The conflicting paths as path-element tuples (parallel to ``conflicts``).
        self.paths = paths if paths is not None else [() for _ in conflicts]
        super().__init__(
            conflict_message(conflicts),
            causes=tuple(
                Cause("FieldManagerConflict", f"conflict with {c.manager_text}", c.field) for c in conflicts
            ),
        )


def conflict_message(conflicts: list[Conflict]) -> str:
    """The Status message apimachinery's ``getConflictMessage`` builds."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {c.manager_text}: {c.field}"
    by_manager: dict[str, list[Conflict]] = {}
    for c in conflicts:
        by_manager.setdefault(c.manager_text, []).append(c)
    lines: list[str] = []
    for text in sorted(by_manager):
        lines.append(f"conflicts with {text}:")
        lines.extend(f"- {c.field}" for c in by_manager[text])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
