"""Errors of the shim package; every one names the file, component or route it is about.

    ShimError
    ├── ManifestError        spin.toml, runtime-config.toml or a SPIN_*/SPINDLE_SHIM_* environment
    │                        setting is malformed (file or "environment" + field)
    ├── VariableError        a required variable has no value, or a template names an unknown one
    ├── ComponentLoadError   a component's wasm cannot be read, compiled, or is of an unsupported kind
    ├── GuestError           a request failed inside the guest (trap, timeout, bad response)
    └── ClientError          the client broke an exchange (not the guest's fault; logged as such)
        ├── ClientGone       it disconnected, or stopped reading the response, before the end
        └── BadRequestBody   its body's framing is malformed, or it stopped sending the body:
                             answered with `status` (400, 408) when no response has started

    ListenError (OSError)    the listen address cannot be bound (in use, not local, no permission)
"""

from __future__ import annotations


class ShimError(Exception):
    """Base of every error the shim raises on purpose."""


class ManifestError(ShimError):
    def __init__(self, path: str, message: str, field: str | None = None) -> None:
        where = f"{path}: {field}" if field else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.field = field


class VariableError(ShimError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"variable {name!r}: {message}")
        self.name = name


class ComponentLoadError(ShimError):
    def __init__(self, component: str, message: str) -> None:
        super().__init__(f"component {component!r}: {message}")
        self.component = component


class GuestError(ShimError):
    def __init__(self, component: str, message: str, *, timeout: bool = False) -> None:
        super().__init__(f"component {component!r}: {message}")
        self.component = component
        self.timeout = timeout


class ClientError(ShimError):
    """The client broke the exchange; the guest that saw it is not at fault."""


class ClientGone(ClientError):
    pass


class BadRequestBody(ClientError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ListenError(OSError):
    """The listen address cannot be bound; the message names it."""
