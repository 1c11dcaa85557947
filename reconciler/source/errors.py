"""Errors of the Git source. Every one names the source URL, with credentials redacted.

    SourceError                    the source could not produce a checkout
    ├── SourceConfigError          bad spec: semver range, sub-path, token file, plain-HTTP token
    ├── SourceUnavailable          the remote could not be reached or the fetch failed (transient)
    ├── RefNotFound                the branch, tag, semver range or commit is not on the remote
    └── VerificationFailed         the head commit is unsigned or signed by an untrusted key

Each error carries `last_good`, the last checkout that was fetched and verified (None on the
first fetch), so the loop can keep reconciling it while it backs off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.source.model import FetchResult


class SourceError(Exception):
    def __init__(self, url: str, message: str, *, last_good: FetchResult | None = None) -> None:
        super().__init__(f"source {url}: {message}")
        self.url = url
        self.last_good = last_good


class SourceConfigError(SourceError):
    pass


class SourceUnavailable(SourceError):
    pass


class RefNotFound(SourceError):
    pass


class VerificationFailed(SourceError):
    pass
