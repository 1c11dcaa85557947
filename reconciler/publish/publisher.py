"""Publish Spin projects: load → (build) → content → last-change commit → assemble → push once.

    load_project(spin_toml, root, ...)        LoadedProject   (validated, built, every byte read)
    created_epochs(root, loaded)              {rel: Change}   (one `git log` for all of them)
    assemble(loaded, target, epoch)           Image           (spin: oci.spinlayout; rootfs: .rootfs)
    push(client, image, target, rel)          PublishResult   (HEAD by digest first: an unchanged
                                                               project costs one request, no upload)
    publish_many(requests, settings, client)  [PublishResult | PublishError]   (what apply/reconcile run)

The `created` time (and so the digest) comes from `$SOURCE_DATE_EPOCH` when set, else the committer time of
the last commit that touched the project's files, else 0; never the clock. So the same tree gives the same
manifest digest on any clone, and a commit elsewhere in the repository leaves the digest alone.
Pushes go by digest (`PUT /v2/<repo>/manifests/sha256:…`), plus the tag when one is asked for.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from oci.descriptors import MANIFEST_V1
from oci.errors import InvalidReference, OciError
from oci.layout import Image
from oci.lockedapp import LockedApp
from oci.reference import Reference
from oci.registry import RegistryClient
from oci.spinlayout import ComponentContent, spin_annotations
from oci.spinlayout import assemble as assemble_spin
from reconciler.publish import build as builder
from reconciler.publish import content as contentmod
from reconciler.publish import gitinfo, lock, rootfs
from reconciler.publish.errors import PublishError, PushError
from reconciler.publish.sources import UrlSources
from renderers import spintoml
from renderers.spintoml.model import App

log = logging.getLogger("spindle.publish")

Format = Literal["spin", "rootfs"]
FORMATS: tuple[Format, ...] = ("spin", "rootfs")


@dataclass(frozen=True)
class Target:
    """Where a project goes: `registry/repository`, an optional tag, and the artifact format."""

    repository: Reference  # no tag, no digest
    tag: str | None = None
    format: Format = "spin"

    @classmethod
    def parse(cls, text: str, *, tag: str | None = None, fmt: str = "spin", where: str = "publish") -> Target:
        """`REG/REPO` or `REG/REPO:TAG` (a digest is refused: the digest is what publishing computes)."""
        if fmt not in FORMATS:
            raise PublishError(where, f"format {fmt!r} must be one of {', '.join(FORMATS)}")
        try:
            ref = Reference.parse(text)
        except InvalidReference as exc:
            raise PublishError(where, str(exc)) from None
        if ref.digest:
            raise PublishError(where, f"{text!r}: give a repository (and tag), not a digest")
        given_tag = ref.tag if ref.tag and text.endswith(f":{ref.tag}") else None
        if tag is not None:
            try:
                Reference.parse(f"{ref.name}:{tag}")
            except InvalidReference as exc:
                raise PublishError(where, str(exc)) from None
        return cls(Reference(ref.registry, ref.repository), tag or given_tag, fmt)


@dataclass(frozen=True)
class LoadedProject:
    rel: str  # the spin.toml, relative to the checkout root
    app: App
    manifest: bytes  # the spin.toml bytes
    locked: LockedApp
    contents: dict[str, contentmod.ComponentFiles]
    build_output: tuple[str, ...] = ()

    @property
    def project_paths(self) -> list[str]:
        """Root-relative paths whose last change dates the project: its directory and outside sources."""
        base = os.path.dirname(self.rel)
        paths = [base or "."]
        if base:
            for path in contentmod.all_paths(self.contents.values()):
                full = os.path.normpath(os.path.join(base, path))
                if not full.startswith(base + "/"):
                    paths.append(full)
        return paths


@dataclass(frozen=True)
class PublishResult:
    project: str
    reference: str  # REG/REPO@sha256:…: what the SpinApp pins
    digest: str
    format: Format
    commit: str | None  # the last commit that changed the project (None: uncommitted / no repository)
    created: int  # the epoch written into `org.opencontainers.image.created`
    pushed: bool  # False when the registry already had it (or nothing was sent: dry run)
    tag: str | None = None
    bytes_uploaded: int = 0
    blobs_uploaded: int = 0


def _first_errors(errors: Sequence[object], limit: int = 5) -> str:
    shown = "; ".join(str(e) for e in errors[:limit])
    return shown + (f"; and {len(errors) - limit} more" if len(errors) > limit else "")


def load_project(
    spin_toml: Path,
    root: Path,
    *,
    build: bool = False,
    fetch_url: contentmod.UrlFetcher | None = None,
) -> LoadedProject:
    """Validate the project, run its builds when asked, and read every byte it ships."""
    root = root.resolve()
    spin_toml = spin_toml.resolve()
    if root != spin_toml.parent and root not in spin_toml.parents:
        raise PublishError(str(spin_toml), f"is not inside {root}")
    rel = spin_toml.relative_to(root).as_posix()
    project = spin_toml.parent
    try:
        data = spin_toml.read_bytes()
    except OSError as exc:
        raise PublishError(rel, f"cannot read: {exc.strerror}") from None
    output: list[str] = []
    if build:
        unchecked = spintoml.load(data, rel, None)  # its Wasm may not exist before the build
        if unchecked.app is None:
            raise PublishError("", _first_errors(unchecked.errors))
        output = builder.build_app(unchecked.app, project, rel)
    loaded = spintoml.load(data, rel, project)
    if loaded.app is None:
        raise PublishError("", _first_errors(loaded.errors))
    app = loaded.app
    locked = lock.locked_app(app, tomllib.loads(data.decode("utf-8")), rel)
    fetch = fetch_url or UrlSources()
    contents = {
        cid: contentmod.component_content(component, project, root, f"{rel}: component {cid!r}", fetch)
        for cid, component in app.components.items()
    }
    return LoadedProject(rel, app, data, locked, contents, tuple(output))


def source_date_epoch() -> int | None:
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise PublishError("SOURCE_DATE_EPOCH", f"{raw!r} is not a number of seconds")
    return int(raw)


def last_changes(root: Path, projects: Sequence[LoadedProject]) -> dict[str, gitinfo.Change | None]:
    """The last commit touching each project (one `git log` for all); {} outside a repository."""
    top = gitinfo.repo_root(root)
    if top is None:
        return {p.rel: None for p in projects}
    below = Path(os.path.relpath(root.resolve(), top.resolve())).as_posix()

    def from_top(path: str) -> str:
        return path if below == "." else os.path.normpath(f"{below}/{path}")

    return gitinfo.last_changes(top, {p.rel: [from_top(q) for q in p.project_paths] for p in projects})


def archive_from_env() -> bool:
    """Spin's switch: `SPIN_OCI_ARCHIVE_LAYERS` set to anything (even empty) forces archive layers."""
    return "SPIN_OCI_ARCHIVE_LAYERS" in os.environ


def assemble(loaded: LoadedProject, target: Target, epoch: int, *, archive: bool = False) -> Image:
    """The artifact of a loaded project in the target's format."""
    if target.format == "rootfs":
        annotations = spin_annotations(loaded.locked.metadata, epoch)
        return rootfs.rootfs_image(
            loaded.manifest, loaded.contents, loaded.rel, epoch=epoch, annotations=annotations
        )
    contents = {
        cid: ComponentContent(c.wasm, {path: f.data for path, f in c.files.items()})
        for cid, c in loaded.contents.items()
    }
    return assemble_spin(loaded.locked, contents, created_epoch=epoch, archive=archive).image


def push(client: RegistryClient, image: Image, target: Target, rel: str) -> tuple[bool, int, int]:
    """Make the registry hold `image` by digest (and tag); (pushed, bytes uploaded, blobs uploaded).

    One HEAD of the manifest by digest decides: a registry that has it has every blob of it."""
    repo = target.repository
    by_digest = Reference(repo.registry, repo.repository, None, image.digest)
    try:
        present = client.manifest_digest(by_digest) == image.digest
        tagged = target.tag is None or client.manifest_digest(repo.with_tag(target.tag)) == image.digest
        if present and tagged:
            return False, 0, 0
        uploaded = blobs = 0
        if not present:
            result = client.push_image(image, by_digest)
            uploaded, blobs = result.bytes_uploaded, result.blobs_uploaded
        if not tagged and target.tag is not None:
            client.push_manifest(repo.with_tag(target.tag), image.manifest, MANIFEST_V1)
    except OciError as exc:
        raise PushError(rel, f"push to {repo.name} failed: {exc}") from exc
    return True, uploaded, blobs


@dataclass(frozen=True)
class Request:
    """One project to publish: its spin.toml and its target."""

    spin_toml: Path
    target: Target
    build: bool = False


@dataclass
class Settings:
    """How a batch is published (what `apply`/`reconcile` and `spindle publish` pass)."""

    dry_run: bool = False  # assemble and compute digests only; no registry traffic
    archive: bool = False
    epoch: int | None = None  # overrides SOURCE_DATE_EPOCH and the commit time
    sources_cache: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)


def publish_many(
    root: Path, requests: Sequence[Request], settings: Settings, client: RegistryClient | None
) -> list[PublishResult | PublishError]:
    """Publish each request; a failure is returned in its slot and never stops the others."""
    fetch = UrlSources(settings.sources_cache)
    loaded: list[LoadedProject | PublishError] = []
    for request in requests:
        try:
            loaded.append(load_project(request.spin_toml, root, build=request.build, fetch_url=fetch))
        except PublishError as exc:
            loaded.append(exc)
    good = [p for p in loaded if isinstance(p, LoadedProject)]
    fixed = settings.epoch if settings.epoch is not None else source_date_epoch()
    changes = last_changes(root, good) if good else {}
    out: list[PublishResult | PublishError] = []
    for request, item in zip(requests, loaded, strict=True):
        if isinstance(item, PublishError):
            out.append(item)
            continue
        change = changes.get(item.rel)
        epoch = fixed if fixed is not None else (change.epoch if change else 0)
        try:
            image = assemble(item, request.target, epoch, archive=settings.archive)
            pushed, uploaded, blobs = (False, 0, 0)
            if not settings.dry_run:
                if client is None:  # pragma: no cover - callers pass one unless dry-running
                    raise PushError(item.rel, "no registry client")
                pushed, uploaded, blobs = push(client, image, request.target, item.rel)
        except PublishError as exc:
            out.append(exc)
            continue
        except OciError as exc:
            out.append(PublishError(item.rel, str(exc)))
            continue
        reference = f"{request.target.repository.name}@{image.digest}"
        log.info("%s: %s %s", item.rel, "pushed" if pushed else "unchanged", reference)
        out.append(
            PublishResult(
                item.rel,
                reference,
                image.digest,
                request.target.format,
                change.sha if change else None,
                epoch,
                pushed,
                request.target.tag,
                uploaded,
                blobs,
            )
        )
    return out


def spin_toml_of(project: Path) -> Path:
    """A project argument (a directory holding spin.toml, or the spin.toml) → the spin.toml."""
    return project / "spin.toml" if project.is_dir() else project


def targets_of(tool: Mapping[str, object] | None) -> tuple[str | None, str | None]:
    """(`publish`, `publish_format`) of a project's `[application.tool.spindle]` table."""
    if not tool:
        return None, None
    ref, fmt = tool.get("publish"), tool.get("publish_format")
    return (ref if isinstance(ref, str) else None), (fmt if isinstance(fmt, str) else None)
