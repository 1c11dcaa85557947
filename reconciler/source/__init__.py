"""The Git source: clone or fetch a repository, resolve a ref, verify and check out a revision.

Public surface: `GitSource(spec, cache_root).fetch() -> FetchResult`, the spec dataclasses and the
error tree (see `reconciler.source.errors`).
"""

from reconciler.source.errors import (
    RefNotFound,
    SourceConfigError,
    SourceError,
    SourceUnavailable,
    VerificationFailed,
)
from reconciler.source.gitsource import GitSource
from reconciler.source.model import Auth, FetchResult, Ref, RefKind, SourceSpec, Verify

__all__ = [
    "Auth",
    "FetchResult",
    "GitSource",
    "Ref",
    "RefKind",
    "RefNotFound",
    "SourceConfigError",
    "SourceError",
    "SourceSpec",
    "SourceUnavailable",
    "VerificationFailed",
    "Verify",
]
