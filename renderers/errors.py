"""The renderers' error tree.

    RenderError                 something in the repo cannot become manifests
    ├── ManifestError           a spin.toml is malformed or invalid
    ├── DocumentError           a YAML document is malformed or of an unknown kind
    ├── SchemaError             a SpinApp / SpinAppExecutor / Shim violates its CRD schema
    ├── WebhookRuleError        a spec breaks a spin-operator admission-webhook rule
    ├── NodePlatformError       a node matches no platform of a Shim
    ├── FetchStrategyError      a Shim names nothing to download (no platforms, no anonHttp)
    ├── RolloutStrategyError    a Shim asks for a rollout runtime-class-manager does not implement
    ├── UnresolvedReferenceError  a runtimeConfig option names a Secret/ConfigMap (key) spindle
    │                           cannot find in the repo
    └── DuplicateObjectError    two files (or renderings) produce the same Kind/namespace/name

    ScaffoldError (ValueError)  `spindle scaffold` flags are invalid; no file to name, so the
                                message is spin-plugin-kube's own

Every error names where it comes from: the repo-relative file, the line when known, the field
path, and the object (`Kind/namespace/name`) when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where something sits in the checkout: a repo-relative path, 1-based line, field path."""

    path: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        text = self.path
        if self.line is not None:
            text += f":{self.line}"
        if self.field:
            text += f": {self.field}"
        return text


class RenderError(Exception):
    """Base class: carries a location and, when known, the object it is about."""

    def __init__(self, message: str, location: Location, obj: str | None = None) -> None:
        self.message = message
        self.location = location
        self.obj = obj
        super().__init__(str(self))

    def __str__(self) -> str:
        subject = f" ({self.obj})" if self.obj else ""
        return f"{self.location}{subject}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": type(self).__name__,
            "path": self.location.path,
            "line": self.location.line,
            "field": self.location.field,
            "object": self.obj,
            "message": self.message,
        }


class ManifestError(RenderError):
    pass


class DocumentError(RenderError):
    pass


class SchemaError(RenderError):
    pass


class WebhookRuleError(RenderError):
    pass


class NodePlatformError(RenderError):
    pass


class FetchStrategyError(RenderError):
    pass


class RolloutStrategyError(RenderError):
    pass


class UnresolvedReferenceError(RenderError):
    pass


class DuplicateObjectError(RenderError):
    pass


class ScaffoldError(ValueError):
    """Invalid scaffold options given on the command line (`spindle scaffold --from ...`).

    The message matches spin-plugin-kube's (`spin kube scaffold`). Options that come from a Spin
    project's `[application.tool.spindle]` table are reported as `ManifestError` instead, with
    the file, line and key.
    """
