"""`source = { url, digest }`: download once, check the sha256, keep a copy by digest.

Like Spin's `load_http_source` (spin `crates/loader/src/local.rs`): the digest must be `sha256:<hex>`, the
bytes must hash to it, and a verified copy is reused by digest afterwards (`cache_dir/sha256/<hex>`, written
atomically). `file://` URLs are read from disk; `http(s)://` through urllib3 with the system CA store.
A mismatch or a failed download is a `SourceFetchError` naming the component.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import urllib3

from reconciler.publish.errors import SourceFetchError

_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_SOURCE_SIZE = 512 << 20


class UrlSources:
    """Fetches URL sources for one publishing run; `cache_dir` None keeps nothing on disk."""

    def __init__(self, cache_dir: Path | None = None, *, timeout: float = 60.0) -> None:
        self.cache_dir = cache_dir
        self._pool: urllib3.PoolManager | None = None
        self._timeout = timeout

    def _cached(self, digest: str) -> Path | None:
        return self.cache_dir / "sha256" / digest.split(":", 1)[1] if self.cache_dir else None

    def __call__(self, url: str, digest: str, where: str) -> bytes:
        if not _SHA256.match(digest):
            raise SourceFetchError(
                where, f"invalid digest {digest!r}; it must be 'sha256:' and 64 hex digits"
            )
        cached = self._cached(digest)
        if cached is not None and cached.is_file():
            data = cached.read_bytes()
            if "sha256:" + hashlib.sha256(data).hexdigest() == digest:
                return data
        data = self._download(url, where)
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise SourceFetchError(where, f"source {url} has digest {actual}, but the manifest says {digest}")
        if cached is not None:
            _atomic_write(cached, data)
        return data

    def _download(self, url: str, where: str) -> bytes:
        parts = urlsplit(url)
        if parts.scheme == "file":
            try:
                return Path(unquote(parts.path)).read_bytes()
            except OSError as exc:
                raise SourceFetchError(where, f"cannot read source {url}: {exc.strerror}") from None
        if parts.scheme not in ("http", "https"):
            raise SourceFetchError(where, f"source URL {url!r} must be https://, http:// or file://")
        if self._pool is None:
            self._pool = urllib3.PoolManager(retries=urllib3.Retry(3, backoff_factor=0.2))
        try:
            response = self._pool.request("GET", url, timeout=self._timeout, preload_content=False)
            try:
                if response.status != 200:
                    raise SourceFetchError(where, f"fetching source {url} answered HTTP {response.status}")
                data = response.read(MAX_SOURCE_SIZE + 1)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise SourceFetchError(where, f"cannot fetch source {url}: {exc}") from None
        if len(data) > MAX_SOURCE_SIZE:
            raise SourceFetchError(where, f"source {url} is larger than {MAX_SOURCE_SIZE} bytes")
        return bytes(data)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
