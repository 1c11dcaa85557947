"""Errors of the oci package; every message names the image reference, blob digest, file or registry.

    OciError
    ├── InvalidReference       an image reference does not parse (the text given)
    ├── LayoutError            an OCI image layout (directory or tar) is malformed, or an input to a
    │                          build is invalid (the layout path / the layer path)
    ├── DigestMismatch         bytes do not hash to the digest or size that names them
    │                          (the blob digest and where it came from)
    └── RegistryError          talking to a registry failed (the registry host, the repository)
        ├── AuthError          credentials missing, rejected, or a token could not be obtained
        │   └── CredentialsError  the Docker config file is unreadable or names an unsupported
        │                         credential helper (the file and the helper)
        ├── NotFound           a manifest or blob does not exist (the reference or digest)
        ├── Unreachable        connection refused / timed out / TLS failure after the retries
        └── RegistryProtocolError  the registry answered something the distribution API does not allow

`DigestMismatch` is not a `RegistryError` because reading a local layout raises it too; the pull code
raises it with the registry named in `source`.
"""

from __future__ import annotations


class OciError(Exception):
    """Base of every error the oci package raises on purpose."""


class InvalidReference(OciError):
    def __init__(self, text: str, message: str) -> None:
        super().__init__(f"image reference {text!r}: {message}")
        self.text = text


class LayoutError(OciError):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


class DigestMismatch(OciError):
    def __init__(
        self,
        expected: str,
        source: str,
        *,
        actual: str | None = None,
        expected_size: int | None = None,
        actual_size: int | None = None,
    ) -> None:
        if actual is not None and actual != expected:
            detail = f"content hashes to {actual}"
        else:
            detail = f"size is {actual_size} bytes, the descriptor says {expected_size}"
        super().__init__(f"blob {expected} from {source}: {detail}")
        self.expected = expected
        self.actual = actual
        self.source = source
        self.expected_size = expected_size
        self.actual_size = actual_size


class RegistryError(OciError):
    def __init__(self, registry: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"registry {registry}: {message}")
        self.registry = registry
        self.status = status


class AuthError(RegistryError):
    """Credentials were missing or rejected (401/403), or the token server refused them."""


class CredentialsError(AuthError):
    """The Docker config file cannot be used for this registry (unreadable, or a credential helper)."""


class NotFound(RegistryError):
    """The registry has no such manifest, blob or repository (404)."""


class Unreachable(RegistryError):
    """The registry could not be reached (connection, timeout or TLS error), after the retries."""


class RegistryProtocolError(RegistryError):
    """The registry answered with a status or headers the distribution API does not allow here."""
