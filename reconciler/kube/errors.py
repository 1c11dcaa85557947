"""The cluster client's error tree. Every error names the object (or request) it is about.

    KubeError                   an API request failed
    ├── NotFound                404: the object (or its kind) does not exist
    ├── Conflict                409: resourceVersion conflict, AlreadyExists, field-manager conflict
    ├── Invalid                 422: the object failed validation; `causes` carry the fields
    ├── BadRequest              400: malformed request
    ├── Forbidden               403: not allowed
    │   └── Unauthorized        401: credentials refused, after one reload of the kubeconfig
    ├── Unavailable             the server could not be reached, or kept failing (5xx, 429)
    │   │                       after the bounded retries
    │   └── Unreachable         several connection failures in a row: the run stops
    └── UnknownKind             discovery does not serve this apiVersion/kind

The HTTP library (the `kubernetes` client's urllib3 pool) never leaks: callers catch these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Bodies that are not a Status are cut short so nothing large (or secret) ends up in logs.
_MAX_RAW = 256


@dataclass(frozen=True)
class Cause:
    """One `details.causes[]` entry of a Status."""

    reason: str
    message: str
    field: str


class KubeError(Exception):
    def __init__(
        self,
        subject: str,
        message: str,
        *,
        status: int = 0,
        reason: str = "",
        causes: tuple[Cause, ...] = (),
    ) -> None:
        self.subject = subject
        self.message = message
        self.status = status
        self.reason = reason
        self.causes = causes
        super().__init__(str(self))

    def __str__(self) -> str:
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.subject}: {self.message}{reason}"


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class Invalid(KubeError):
    pass


class BadRequest(KubeError):
    pass


class Forbidden(KubeError):
    pass


class Unauthorized(Forbidden):
    """401: the credentials were refused (after one reload of the kubeconfig)."""


class Unavailable(KubeError):
    pass


class Unreachable(Unavailable):
    """The API server did not answer several requests in a row (or for the whole time budget):
    the run stops instead of failing object by object. Never caught per object."""


class UnknownKind(KubeError):
    pass


_BY_STATUS: dict[int, type[KubeError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


def from_response(subject: str, status: int, body: bytes | str | None) -> KubeError:
    """Translate an error response (ideally a `kind: Status` body) into the tree."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    message, reason = text[:_MAX_RAW] or f"HTTP {status}", ""
    causes: tuple[Cause, ...] = ()
    try:
        doc: Any = json.loads(text) if text else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        message = str(doc.get("message") or message)
        reason = str(doc.get("reason") or "")
        details = doc.get("details") or {}
        causes = tuple(
            Cause(str(c.get("reason", "")), str(c.get("message", "")), str(c.get("field", "")))
            for c in (details.get("causes") or [])
            if isinstance(c, dict)
        )
    cls = _BY_STATUS.get(status, Unavailable if status >= 500 or status == 429 else KubeError)
    return cls(subject, message, status=status, reason=reason, causes=causes)


def is_immutable(err: KubeError) -> bool:
    """Whether a dry-run failed because a field cannot change in place: the API server says
    "immutable" in the message or, for a 422 Invalid, in one of its causes."""
    text = err.message.lower()
    if "immutable" in text:
        return True
    if isinstance(err, Invalid):
        return any("immutable" in c.message.lower() for c in err.causes)
    return False
