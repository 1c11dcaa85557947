"""Media types, descriptors, digests and canonical JSON: the vocabulary shared by layouts and registries.

Every JSON document this package writes goes through `canonical_json` (sorted keys, no whitespace,
UTF-8), so the same document always has the same bytes and therefore the same digest. Only sha256
digests are produced; any `algorithm:hex` digest is accepted when reading as long as it is sha256 or
sha512 (the two the OCI image spec registers).
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from oci.errors import DigestMismatch, LayoutError

MANIFEST_V1 = "application/vnd.oci.image.manifest.v1+json"
INDEX_V1 = "application/vnd.oci.image.index.v1+json"
CONFIG_V1 = "application/vnd.oci.image.config.v1+json"
LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG_V1 = "application/vnd.docker.container.image.v1+json"

MANIFEST_TYPES = frozenset({MANIFEST_V1, DOCKER_MANIFEST_V2})
INDEX_TYPES = frozenset({INDEX_V1, DOCKER_MANIFEST_LIST_V2})

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
_CHUNK = 1 << 20

_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


class Reader(Protocol):
    """Anything with a binary `read(size)`: files, HTTP responses, tar members."""

    def read(self, size: int = ..., /) -> bytes: ...


def host_architecture() -> str:
    """The host's CPU architecture as Go (and so OCI) names it: amd64, arm64, ..."""
    machine = _platform.machine().lower()
    return _GO_ARCH.get(machine, machine)


def canonical_json(document: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the one serialization used for every digest."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str, where: str) -> str:
    """Return `digest` if it is a well-formed sha256/sha512 digest, else raise LayoutError naming `where`."""
    if not _DIGEST.match(digest):
        raise LayoutError(where, f"malformed digest {digest!r}")
    return digest


def new_hasher(digest: str) -> Any:
    """A hashlib object for the algorithm named by `digest` (sha256 or sha512)."""
    return hashlib.new(digest.split(":", 1)[0])


def verify_bytes(data: bytes, digest: str, size: int | None, source: str) -> None:
    """Raise DigestMismatch unless `data` has exactly `size` bytes and hashes to `digest`."""
    if size is not None and len(data) != size:
        raise DigestMismatch(digest, source, expected_size=size, actual_size=len(data))
    hasher = new_hasher(digest)
    hasher.update(data)
    actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
    if actual != digest:
        raise DigestMismatch(digest, source, actual=actual)


def verify_stream(stream: Reader, digest: str, size: int | None, source: str) -> int:
    """Read `stream` to its end in chunks, verifying size and digest; returns the byte count."""
    hasher = new_hasher(digest)
    count = 0
    while chunk := stream.read(_CHUNK):
        count += len(chunk)
        if size is not None and count > size:
            raise DigestMismatch(digest, source, expected_size=size, actual_size=count)
        hasher.update(chunk)
    if size is not None and count != size:
        raise DigestMismatch(digest, source, expected_size=size, actual_size=count)
    actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
    if actual != digest:
        raise DigestMismatch(digest, source, actual=actual)
    return count


@dataclass(frozen=True)
class Platform:
    architecture: str
    os: str = "linux"
    variant: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    @classmethod
    def host(cls) -> Platform:
        return cls(architecture=host_architecture(), os="linux")


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest, index or config says about one blob."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    @classmethod
    def for_bytes(
        cls, media_type: str, data: bytes, annotations: Mapping[str, str] | None = None
    ) -> Descriptor:
        return cls(media_type, sha256_digest(data), len(data), dict(annotations or {}))

    @classmethod
    def from_json(cls, raw: Any, where: str) -> Descriptor:
        """Parse a descriptor object; `where` names the document it came from for errors."""
        if not isinstance(raw, dict):
            raise LayoutError(where, "a descriptor is not a JSON object")
        media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise LayoutError(where, "a descriptor has no mediaType")
        if not isinstance(digest, str):
            raise LayoutError(where, "a descriptor has no digest")
        check_digest(digest, where)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise LayoutError(where, f"descriptor {digest} has no valid size")
        annotations = raw.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
        ):
            raise LayoutError(where, f"descriptor {digest} has malformed annotations")
        plat = raw.get("platform")
        parsed_platform = None
        if isinstance(plat, dict) and isinstance(plat.get("architecture"), str):
            variant = plat.get("variant")
            parsed_platform = Platform(
                architecture=plat["architecture"],
                os=str(plat.get("os", "linux")),
                variant=variant if isinstance(variant, str) else None,
            )
        return cls(media_type, digest, size, dict(annotations), parsed_platform)
