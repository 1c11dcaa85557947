"""What a Git source is asked for (SourceSpec, Ref, Auth, Verify) and what it yields (FetchResult)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.changeset import Revision


class RefKind(enum.StrEnum):
    BRANCH = "branch"
    TAG = "tag"
    SEMVER = "semver"
    COMMIT = "commit"


@dataclass(frozen=True)
class Ref:
    kind: RefKind = RefKind.BRANCH
    value: str = "main"
    include_prerelease: bool = False  # semver only

    def __str__(self) -> str:
        return f"{self.kind.value} {self.value}"


@dataclass(frozen=True)
class Auth:
    """Credentials. Tokens are read when a command runs and are never written to disk or logs."""

    ssh_key: Path | None = None
    known_hosts: Path | None = None
    token_file: Path | None = None
    token_env: str | None = None
    username: str = "git"  # HTTPS basic-auth user sent with the token (GitHub accepts any)


@dataclass(frozen=True)
class Verify:
    """Refuse a head commit that is not signed by one of these keys."""

    allowed_signers: Path | None = None  # SSH signatures: an `allowed_signers` file
    gpg_home: Path | None = None  # GPG signatures: a GNUPGHOME holding the trusted keyring

    @property
    def enabled(self) -> bool:
        return self.allowed_signers is not None or self.gpg_home is not None


@dataclass(frozen=True)
class SourceSpec:
    url: str  # https://, ssh://, scp-like user@host:path, file:// or a local path
    ref: Ref = field(default_factory=Ref)
    path: str = ""  # sub-path inside the repository
    auth: Auth = field(default_factory=Auth)
    verify: Verify = field(default_factory=Verify)
    shallow: bool = True
    timeout: float = 120.0  # seconds per git command


@dataclass(frozen=True)
class FetchResult:
    checkout: Path  # the directory to render: the work tree, or its sub-path
    revision: Revision
    changed: bool  # False when the remote had not moved and no fetch ran
    ref: str = ""  # the resolved ref, e.g. `refs/tags/v1.4.0`
