"""kubesim's error tree: every failure a client can cause becomes a Kubernetes `Status`.

    ApiError                    one HTTP error answer, already in the `Status` envelope's terms
                                (built by the helpers below: not_found, already_exists, stale,
                                invalid, bad_request, unsupported_media_type, ...)
    StoreError                  the SQLite store could not be opened or written (a server fault)

The inner layers raise their own errors, which the seams turn into an `ApiError` naming the object:

    kubesim.ssa.errors.SSAError         (its own tree)  -> 400 / 409 / 422   by `fields`
    kubesim.protobuf.ProtobufError      malformed body  -> 400               by `bodies`
    └── NotRead                         kind/field not read from protobuf -> 415
    kubesim.schema.CRDSchemaError       unusable CRD schema -> 422           by `crds`

(`ssa.fieldpath.FieldsV1Error` and `ssa.typed.TypeErrors` stay inside the engine, which reports
them as `SSAError`s.) Handlers raise `ApiError`; the HTTP layer turns it into the JSON body.
Anything else that escapes a handler is a bug and is answered with a 500 `InternalError` (and
logged), never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cause:
    """One `details.causes[]` entry: `field` is a dotted path like `spec.replicas`."""

    reason: str
    message: str
    field: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


@dataclass
class ApiError(Exception):
    code: int
    reason: str
    message: str
    name: str = ""
    group: str = ""
    kind: str = ""
    causes: list[Cause] = field(default_factory=list)
    retry_after: int | None = None

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_json() for c in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            body["details"] = details
        return body


class StoreError(Exception):
    """The state database failed; names the database path."""


def qualified(resource: str, group: str) -> str:
    """`deployments.apps`, or just `configmaps` for the core group (as the real server prints)."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found', name, group, resource
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists', name, group, resource
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    msg = f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}'
    return ApiError(409, "Conflict", msg, name, group, resource)


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


def stale(resource: str, group: str, name: str) -> ApiError:
    return conflict(resource, group, name, STALE_OBJECT)


def uid_precondition_failed(resource: str, group: str, name: str, given: Any, live: Any) -> ApiError:
    """409: a write or delete named a uid that is not the live object's (it was recreated)."""
    return ApiError(
        409,
        "Conflict",
        f"Precondition failed: UID in precondition: {given}, UID in object meta: {live}",
        name,
        group,
        resource,
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiError:
    """422 Invalid: `Deployment.apps "x" is invalid: spec.replicas: Invalid value: ...`."""
    parts = [f"{c.field}: {c.message}" if c.field else c.message for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    what = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{what} "{name}" is invalid: {summary}', name, group, kind, list(causes))


def required(path: str, detail: str) -> Cause:
    return Cause("FieldValueRequired", f"Required value: {detail}", path)


def bad_value(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {_render(value)}: {detail}", path)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return "{...}" if isinstance(value, dict) else "[...]"
    return str(value)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(resource: str, group: str, name: str, why: str) -> ApiError:
    msg = f'{qualified(resource, group)} "{name}" is forbidden: {why}'
    return ApiError(403, "Forbidden", msg, name, group, resource)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> ApiError:
    return ApiError(406, "NotAcceptable", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    msg = (
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted)
        if content_type
        else "the body of the request must have a Content-Type"
    )
    return ApiError(415, "UnsupportedMediaType", msg)


def path_not_found(path: str) -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")
