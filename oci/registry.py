"""A client for the OCI distribution API: push image layouts, pull images into layouts.

    client = RegistryClient(username=..., password=..., ca_file=...)   # or credentials from ~/.docker
    client.push_layout(Path("app-layout"), "registry.example.com/team/app:1") -> PushResult
    client.push_image(image, "registry.example.com/team/app:1")               -> PushResult
    client.pull("registry.example.com/team/app:1", Path("out-layout"))        -> PullResult

Push, per blob: `HEAD` first (skip what the repository has); else a cross-repository mount
(`POST .../blobs/uploads/?mount=<digest>&from=<repo>`) when the blob is known to be in another
repository of the same registry (this client pushed or pulled it there, or `mount_from` names
candidates); else an upload: monolithic (`POST` then one `PUT ?digest=`) up to `chunk_threshold`
bytes, chunked above it (`PATCH`es with `Content-Range`, `chunk_size` bytes each, then `PUT`).
Blobs are streamed from the layout; only one chunk is ever in memory. Manifests go up with their
exact bytes (so the digest is the layout's), children of an index by digest, the root by the tag or
digest of the reference; a tag that already points at the digest is not re-put.

Pull: the manifest (an index is resolved to the manifest for the platform, by default linux on the
host architecture) is checked against the reference's digest or the registry's
`Docker-Content-Digest`; every blob is streamed to disk through its hash and dropped on mismatch
(`DigestMismatch`). The layout gets one index entry named by the reference.

HTTP, auth, TLS and retries live in `oci.transport` (its docstring says why urllib3 and not oras-py).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from oci.auth import Credentials, DockerConfig, TokenCache, scope_for
from oci.descriptors import (
    ANNOTATION_CONTAINERD_NAME,
    DOCKER_MANIFEST_LIST_V2,
    DOCKER_MANIFEST_V2,
    INDEX_TYPES,
    INDEX_V1,
    MANIFEST_TYPES,
    MANIFEST_V1,
    Descriptor,
    Platform,
    sha256_digest,
    verify_bytes,
)
from oci.errors import AuthError, DigestMismatch, NotFound, RegistryError, RegistryProtocolError, Unreachable
from oci.layout import (
    MAX_DOCUMENT_SIZE,
    Image,
    Layout,
    LayoutDir,
    LayoutImage,
    ManifestNode,
    parse_manifest,
    select_platform,
)
from oci.reference import Reference
from oci.transport import RetryPolicy, Transport, finish, make_pools

logger = logging.getLogger("oci.registry")

ACCEPT_MANIFESTS = ", ".join([MANIFEST_V1, INDEX_V1, DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST_V2])
DEFAULT_CHUNK_THRESHOLD = 16 << 20
DEFAULT_CHUNK_SIZE = 8 << 20
BlobOpener = Callable[[], AbstractContextManager[BinaryIO]]
BlobOutcome = Literal["exists", "mounted", "uploaded"]


@dataclass(frozen=True)
class PushResult:
    reference: str  # full normalized reference pushed to
    digest: str  # manifest (or index) digest: `name@digest` pins exactly this push
    bytes_uploaded: int  # blob bytes sent
    bytes_skipped: int  # blob bytes the registry already had or mounted from another repository
    blobs_uploaded: int
    blobs_skipped: int  # already in the repository (HEAD said so)
    blobs_mounted: int  # cross-repository mounts
    manifests_pushed: int  # manifests PUT (0 when the tag already pointed at the digest)


@dataclass(frozen=True)
class PullResult:
    reference: str
    digest: str  # digest of the image manifest written to the layout
    path: Path
    bytes_downloaded: int
    blobs_downloaded: int
    blobs_skipped: int  # already in the layout


@dataclass
class _Counts:
    uploaded: int = 0
    skipped: int = 0
    blobs_uploaded: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    manifests: int = 0


def _ref(reference: str | Reference) -> Reference:
    return reference if isinstance(reference, Reference) else Reference.parse(reference)


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class RegistryClient:
    """Talks to any number of registries; one transport (auth state, token cache) per registry host.

    Credentials: `username`/`password` (or `credentials`) apply to every registry this client talks
    to; without them the Docker config file (`docker_config`, else `$DOCKER_CONFIG/config.json`,
    else `~/.docker/config.json`) is consulted when a registry asks; `use_docker_config=False` turns
    that off.
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        credentials: Credentials | None = None,
        docker_config: Path | None = None,
        use_docker_config: bool = True,
        ca_file: Path | None = None,
        force_plain_http: bool = False,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        chunk_threshold: int = DEFAULT_CHUNK_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise AuthError("(any)", "give both a username and a password, or neither")
        if username is not None and password is not None:
            credentials = Credentials(username, password)
        if chunk_size <= 0 or chunk_threshold < 0:
            raise ValueError("chunk_size must be > 0 and chunk_threshold >= 0")
        self._credentials = credentials
        self._docker_config_path = docker_config
        self._use_docker_config = use_docker_config
        self._force_plain_http = force_plain_http
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self.chunk_threshold = chunk_threshold
        self.chunk_size = chunk_size
        self._sleep = sleep
        self._pool, self._plain_pool = make_pools(ca_file)
        self._tokens = TokenCache()
        self._transports: dict[str, Transport] = {}
        self._known: dict[str, dict[str, str]] = {}  # registry -> blob digest -> a repository holding it
        self._lock = threading.Lock()

    def close(self) -> None:
        self._pool.clear()
        self._plain_pool.clear()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------------------

    def transport(self, ref: Reference) -> Transport:
        with self._lock:
            transport = self._transports.get(ref.registry)
            if transport is None:
                registry = ref.registry

                def credentials() -> Credentials | None:
                    if self._credentials is not None:
                        return self._credentials
                    if not self._use_docker_config:
                        return None
                    return DockerConfig.load(self._docker_config_path).credentials_for(registry)

                extra = {"sleep": self._sleep} if self._sleep is not None else {}
                transport = Transport(
                    ref.registry,
                    ref.api_host,
                    pool=self._pool,
                    plain_pool=self._plain_pool,
                    credentials=credentials,
                    force_plain_http=self._force_plain_http,
                    retry=self._retry,
                    timeout=self._timeout,
                    token_cache=self._tokens,
                    **extra,
                )
                self._transports[ref.registry] = transport
            return transport

    def _remember(self, ref: Reference, digest: str) -> None:
        with self._lock:
            self._known.setdefault(ref.registry, {})[digest] = ref.repository

    def ping(self, reference: str | Reference) -> None:
        """Check the registry answers the distribution API (and learn its auth scheme)."""
        self.transport(_ref(reference)).ping()

    # --- blobs -------------------------------------------------------------------------------------

    def blob_exists(self, reference: str | Reference, descriptor: Descriptor) -> bool:
        ref = _ref(reference)
        response = self.transport(ref).request(
            "HEAD",
            f"/v2/{ref.repository}/blobs/{descriptor.digest}",
            what=f"blob {descriptor.digest} in {ref.name}",
            scopes=[scope_for(ref.repository, ["pull"])],
            expect=(200, 404),
        )
        finish(response)
        return response.status == 200

    def upload_blob(
        self,
        reference: str | Reference,
        descriptor: Descriptor,
        opener: BlobOpener,
        *,
        mount_from: Sequence[str] = (),
    ) -> BlobOutcome:
        """Make sure the repository holds the blob; returns "exists", "mounted" or "uploaded"."""
        ref = _ref(reference)
        if self.blob_exists(ref, descriptor):
            self._remember(ref, descriptor.digest)
            return "exists"
        transport = self.transport(ref)
        push_scope = scope_for(ref.repository, ["pull", "push"])
        candidates = []
        known = self._known.get(ref.registry, {}).get(descriptor.digest)
        for repo in [known, *mount_from]:
            if repo and repo != ref.repository and repo not in candidates:
                candidates.append(repo)
        location: str | None = None
        for source in candidates:
            try:
                response = transport.request(
                    "POST",
                    f"/v2/{ref.repository}/blobs/uploads/?"
                    + urlencode({"mount": descriptor.digest, "from": source}),
                    what=f"mount of blob {descriptor.digest} from {source} into {ref.name}",
                    scopes=[push_scope, scope_for(source, ["pull"])],
                    headers={"Content-Length": "0"},
                    expect=(201, 202),
                )
            except AuthError as exc:  # no pull access to the source: just upload
                logger.info("cross-repository mount refused (%s); uploading instead", exc)
                continue
            finish(response)
            if response.status == 201:
                self._remember(ref, descriptor.digest)
                return "mounted"
            location = response.headers.get("Location")  # the registry opened an upload instead
            break
        for attempt in (1, 2):
            try:
                self._upload(ref, descriptor, opener, location)
                break
            except (NotFound, RegistryProtocolError, Unreachable) as exc:  # e.g. BLOB_UPLOAD_INVALID
                if attempt == 2:
                    raise
                logger.info("upload of %s failed (%s); restarting it", descriptor.digest, exc)
                location = None
        self._remember(ref, descriptor.digest)
        return "uploaded"

    def _start_upload(self, ref: Reference) -> str:
        transport = self.transport(ref)
        response = transport.request(
            "POST",
            f"/v2/{ref.repository}/blobs/uploads/",
            what=f"upload to {ref.name}",
            scopes=[scope_for(ref.repository, ["pull", "push"])],
            headers={"Content-Length": "0"},
            expect=(202,),
        )
        finish(response)
        return self._location(ref, response.headers.get("Location"), "upload start")

    def _location(self, ref: Reference, location: str | None, step: str) -> str:
        if not location:
            raise RegistryProtocolError(ref.registry, f"{step} for {ref.name}: the registry sent no Location")
        return urljoin(self.transport(ref).base_url + "/", location)

    def _upload(
        self, ref: Reference, descriptor: Descriptor, opener: BlobOpener, location: str | None
    ) -> None:
        transport = self.transport(ref)
        scopes = [scope_for(ref.repository, ["pull", "push"])]
        url = self._location(ref, location, "upload") if location else self._start_upload(ref)
        what = f"upload of blob {descriptor.digest} to {ref.name}"
        octet = {"Content-Type": "application/octet-stream"}
        if descriptor.size <= self.chunk_threshold:
            response = transport.request(
                "PUT",
                _with_query(url, digest=descriptor.digest),
                what=what,
                scopes=scopes,
                headers={**octet, "Content-Length": str(descriptor.size)},
                body=opener,
                expect=(201,),
            )
        else:
            offset = 0
            with opener() as stream:
                while offset < descriptor.size:
                    chunk = stream.read(min(self.chunk_size, descriptor.size - offset))
                    if not chunk:
                        raise DigestMismatch(
                            descriptor.digest,
                            "the local blob",
                            expected_size=descriptor.size,
                            actual_size=offset,
                        )
                    response = transport.request(
                        "PATCH",
                        url,
                        what=what,
                        scopes=scopes,
                        headers={
                            **octet,
                            "Content-Length": str(len(chunk)),
                            "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                        },
                        body=chunk,
                        expect=(202,),
                    )
                    finish(response)
                    url = self._location(ref, response.headers.get("Location"), "upload chunk")
                    offset += len(chunk)
            response = transport.request(
                "PUT",
                _with_query(url, digest=descriptor.digest),
                what=what,
                scopes=scopes,
                headers={**octet, "Content-Length": "0"},
                expect=(201,),
            )
        finish(response)
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != descriptor.digest:
            raise DigestMismatch(
                descriptor.digest, f"registry {ref.registry} (upload to {ref.name})", actual=answered
            )

    # --- manifests ---------------------------------------------------------------------------------

    def manifest_digest(self, reference: str | Reference) -> str | None:
        """The digest `reference` points at (HEAD), or None when the registry has no such manifest."""
        ref = _ref(reference)
        response = self.transport(ref).request(
            "HEAD",
            f"/v2/{ref.repository}/manifests/{ref.target}",
            what=f"manifest {ref}",
            scopes=[scope_for(ref.repository, ["pull"])],
            headers={"Accept": ACCEPT_MANIFESTS},
            expect=(200, 404),
        )
        finish(response)
        return response.headers.get("Docker-Content-Digest") if response.status == 200 else None

    def push_manifest(self, reference: str | Reference, raw: bytes, media_type: str) -> str:
        """PUT `raw` (exact bytes) under the reference's tag or digest; returns its digest."""
        ref = _ref(reference)
        digest = sha256_digest(raw)
        if ref.digest and ref.digest != digest:
            raise DigestMismatch(ref.digest, f"the manifest pushed as {ref}", actual=digest)
        response = self.transport(ref).request(
            "PUT",
            f"/v2/{ref.repository}/manifests/{ref.target}",
            what=f"manifest {ref}",
            scopes=[scope_for(ref.repository, ["pull", "push"])],
            headers={"Content-Type": media_type, "Content-Length": str(len(raw))},
            body=raw,
            expect=(201,),
        )
        finish(response)
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise DigestMismatch(digest, f"registry {ref.registry} (manifest {ref})", actual=answered)
        return digest

    def get_manifest(self, reference: str | Reference) -> tuple[Descriptor, bytes]:
        """GET a manifest or index, verified against the reference's digest or Docker-Content-Digest."""
        ref = _ref(reference)
        response = self.transport(ref).request(
            "GET",
            f"/v2/{ref.repository}/manifests/{ref.target}",
            what=f"manifest {ref}",
            scopes=[scope_for(ref.repository, ["pull"])],
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        try:
            raw = response.read(MAX_DOCUMENT_SIZE + 1)
        except Urllib3HTTPError as exc:
            raise Unreachable(ref.registry, f"manifest {ref}: reading the body failed: {exc}") from exc
        finally:
            finish(response)
        source = f"registry {ref.registry} (manifest {ref})"
        if len(raw) > MAX_DOCUMENT_SIZE:
            raise RegistryProtocolError(
                ref.registry, f"manifest {ref} is larger than {MAX_DOCUMENT_SIZE} bytes"
            )
        expected = ref.digest or response.headers.get("Docker-Content-Digest") or sha256_digest(raw)
        verify_bytes(raw, expected, None, source)
        media_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        try:
            declared = json.loads(raw).get("mediaType")
        except (ValueError, AttributeError):
            raise RegistryProtocolError(ref.registry, f"manifest {ref} is not a JSON object") from None
        if isinstance(declared, str) and declared:
            media_type = declared
        if media_type not in MANIFEST_TYPES | INDEX_TYPES:
            raise RegistryProtocolError(
                ref.registry, f"manifest {ref} has unsupported media type {media_type!r}"
            )
        return Descriptor(media_type, expected, len(raw)), raw

    # --- pushing images ----------------------------------------------------------------------------

    def _push_node(
        self,
        ref: Reference,
        node: ManifestNode,
        open_blob: Callable[[Descriptor], AbstractContextManager[BinaryIO]],
        mount_from: Sequence[str],
        counts: _Counts,
    ) -> str:
        for blob in node.blobs():
            outcome = self.upload_blob(ref, blob, functools.partial(open_blob, blob), mount_from=mount_from)
            if outcome == "uploaded":
                counts.uploaded += blob.size
                counts.blobs_uploaded += 1
            else:
                counts.skipped += blob.size
                if outcome == "mounted":
                    counts.blobs_mounted += 1
                else:
                    counts.blobs_skipped += 1
        for child in node.walk():
            target = (
                ref
                if child is node
                else Reference(ref.registry, ref.repository, None, child.descriptor.digest)
            )
            if self.manifest_digest(target) == child.descriptor.digest:
                continue
            self.push_manifest(target, child.raw, child.descriptor.media_type)
            counts.manifests += 1
        return node.descriptor.digest

    def push_layout(
        self,
        layout: Path | Layout,
        reference: str | Reference,
        *,
        image: str | None = None,
        mount_from: Sequence[str] = (),
    ) -> PushResult:
        """Push one image of an OCI layout (directory or tar) to `reference`.

        `image` picks the layout's index entry by name (the only entry when None). Every blob is
        verified while the layout is read, before anything is sent.
        """
        ref = _ref(reference)
        with contextlib.ExitStack() as stack:
            opened = layout if isinstance(layout, Layout) else stack.enter_context(Layout(layout))
            resolved: LayoutImage = opened.image(image)
            counts = _Counts()
            digest = self._push_node(ref, resolved.root, opened.open_blob, mount_from, counts)
        return self._result(ref, digest, counts)

    def push_image(
        self, image: Image, reference: str | Reference, *, mount_from: Sequence[str] = ()
    ) -> PushResult:
        """Push an in-memory `oci.layout.Image` to `reference`."""
        ref = _ref(reference)
        blobs = {descriptor.digest: data for descriptor, data in image.blobs()}
        node = ManifestNode(
            image.manifest_descriptor,
            image.manifest,
            image.config_descriptor,
            tuple(layer.descriptor for layer in image.layers),
        )

        def open_blob(descriptor: Descriptor) -> AbstractContextManager[BinaryIO]:
            return contextlib.nullcontext(io.BytesIO(blobs[descriptor.digest]))

        counts = _Counts()
        digest = self._push_node(ref, node, open_blob, mount_from, counts)
        return self._result(ref, digest, counts)

    @staticmethod
    def _result(ref: Reference, digest: str, counts: _Counts) -> PushResult:
        return PushResult(
            reference=str(ref),
            digest=digest,
            bytes_uploaded=counts.uploaded,
            bytes_skipped=counts.skipped,
            blobs_uploaded=counts.blobs_uploaded,
            blobs_skipped=counts.blobs_skipped,
            blobs_mounted=counts.blobs_mounted,
            manifests_pushed=counts.manifests,
        )

    # --- pulling -----------------------------------------------------------------------------------

    def fetch_blob(self, reference: str | Reference, descriptor: Descriptor, layout: LayoutDir) -> bool:
        """Stream one blob into `layout`, verifying it; False when the layout already had it."""
        ref = _ref(reference)
        if layout.has_blob(descriptor):
            return False
        transport = self.transport(ref)
        source = f"registry {ref.registry} ({ref.name})"
        for attempt in range(1, transport.retry.attempts + 1):
            response = transport.request(
                "GET",
                f"/v2/{ref.repository}/blobs/{descriptor.digest}",
                what=f"blob {descriptor.digest} in {ref.name}",
                scopes=[scope_for(ref.repository, ["pull"])],
            )
            try:
                layout.write_blob_stream(descriptor, _ChunkReader(response), source)
            except Urllib3HTTPError as exc:
                if attempt == transport.retry.attempts:
                    raise Unreachable(
                        ref.registry, f"blob {descriptor.digest} in {ref.name}: download failed: {exc}"
                    ) from exc
                logger.info("download of %s broke off (%s); retrying", descriptor.digest, exc)
                continue
            finally:
                finish(response)
            self._remember(ref, descriptor.digest)
            return True
        raise AssertionError("unreachable")  # pragma: no cover

    def pull(self, reference: str | Reference, dest: Path, *, platform: Platform | None = None) -> PullResult:
        """Pull `reference` into the OCI layout directory `dest` (created or added to).

        An index is resolved to the manifest for `platform` (default: linux on the host architecture);
        that manifest is what the layout's entry (named by the reference) points at.
        """
        ref = _ref(reference)
        descriptor, raw = self.get_manifest(ref)
        platform_of_entry: Platform | None = None
        if descriptor.media_type in INDEX_TYPES:
            entries = [
                Descriptor.from_json(m, f"index {ref}") for m in json.loads(raw).get("manifests") or []
            ]
            chosen = select_platform(entries, platform)
            if chosen is None:
                wanted = (platform or Platform.host()).to_json()
                raise RegistryError(ref.registry, f"index {ref} has no manifest for platform {wanted}")
            platform_of_entry = chosen.platform
            descriptor, raw = self.get_manifest(Reference(ref.registry, ref.repository, None, chosen.digest))
            if descriptor.media_type not in MANIFEST_TYPES:
                raise RegistryProtocolError(
                    ref.registry, f"index {ref}: {chosen.digest} is not an image manifest"
                )
        config, layers = parse_manifest(descriptor, raw, f"registry {ref.registry} (manifest {ref})")
        layout = LayoutDir(dest)
        downloaded = fetched = skipped = 0
        for blob in {b.digest: b for b in (config, *layers)}.values():
            if self.fetch_blob(ref, blob, layout):
                downloaded += blob.size
                fetched += 1
            else:
                skipped += 1
        if platform_of_entry is None:
            platform_of_entry = _platform_of_config(layout.blob_path(config.digest))
        layout.write_blob(descriptor, raw)
        entry = Descriptor(descriptor.media_type, descriptor.digest, descriptor.size, {}, platform_of_entry)
        written = layout.set_entry(entry, ref)
        logger.info(
            "pulled %s (%s) into %s", written.annotations.get(ANNOTATION_CONTAINERD_NAME), entry.digest, dest
        )
        return PullResult(str(ref), descriptor.digest, Path(dest), downloaded, fetched, skipped)


class _ChunkReader:
    """`read(n)` over a streaming urllib3 response (always returns bytes, b"" at the end)."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response

    def read(self, size: int = -1, /) -> bytes:
        return self._response.read(size if size > 0 else 1 << 20)


def _platform_of_config(path: Path) -> Platform | None:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if isinstance(document, dict) and isinstance(document.get("architecture"), str):
        return Platform(document["architecture"], str(document.get("os") or "linux"))
    return None


def push_layout(layout: Path | Layout, reference: str | Reference, **options: Any) -> PushResult:
    """`RegistryClient(**options).push_layout(layout, reference)` (see RegistryClient for the options)."""
    with RegistryClient(**options) as client:
        return client.push_layout(layout, reference)


def pull(reference: str | Reference, dest: Path, **options: Any) -> PullResult:
    """`RegistryClient(**options).pull(reference, dest)` (see RegistryClient for the options)."""
    with RegistryClient(**options) as client:
        return client.pull(reference, dest)
