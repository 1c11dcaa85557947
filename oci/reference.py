"""Image references (`[registry/]repository[:tag][@digest]`), normalized the way Docker and containerd do.

`app:1` is `docker.io/library/app:1`; `user/app` is `docker.io/user/app:latest`; the first path part is
a registry host only when it contains `.` or `:` or is `localhost`. The grammar follows
distribution/reference (lower-case path components separated by `.`, `_`, `__` or dashes; tags up to
128 word characters; sha256/sha512 digests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from oci.errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


@dataclass(frozen=True)
class Reference:
    """A parsed, normalized image reference. `str()` gives the full form, e.g. `docker.io/library/app:1`."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: str = "latest") -> Reference:
        """Parse and normalize; a reference with neither tag nor digest gets `default_tag`."""
        if not text or text != text.strip():
            raise InvalidReference(text, "empty or surrounded by whitespace")
        rest = text
        digest = None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.match(digest):
                raise InvalidReference(text, f"malformed digest {digest!r}")
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not _TAG.match(tag):
                raise InvalidReference(text, f"malformed tag {tag!r}")
        parts = rest.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            registry, path = parts[0], parts[1:]
            if not _DOMAIN.match(registry):
                raise InvalidReference(text, f"malformed registry host {registry!r}")
        else:
            registry, path = DOCKER_HUB, parts
        if registry in ("index.docker.io", "registry-1.docker.io"):
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and len(path) == 1:
            path = ["library", *path]
        for component in path:
            if not _COMPONENT.match(component):
                raise InvalidReference(
                    text, f"repository component {component!r} must be lower-case letters, digits and . _ -"
                )
        repository = "/".join(path)
        if len(repository) > 255:
            raise InvalidReference(text, "repository name longer than 255 characters")
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry=registry, repository=repository, tag=tag, digest=digest)

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host:port the distribution API lives on (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def target(self) -> str:
        """What goes after `/manifests/`: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out
