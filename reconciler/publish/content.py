"""The bytes a project ships: each component's Wasm and its `files`, laid out as the guest sees them.

`files` entries are expanded as Spin's loader copies them (spin `crates/loader/src/local.rs`,
`copy_file_mounts`, FilesMountStrategy::Copy):

    "static/a.txt"                                    → static/a.txt
    "static" (a directory)                            → static/<every file below it>
    "assets/**/*.css" (a glob, hidden files included) → each matching file at its project path
    { source = "web", destination = "/site" }         → site/<every file below web>
    { source = "web/i.html", destination = "/x" }     → x   (the destination names the file)

`exclude_files` globs are matched against the project-relative path (`*` crosses `/`, as Rust's `glob`
pattern does by default). Every path must stay inside the checkout; a symlink leading out is an error.
Component sources are local files (inside the checkout), `{ url, digest }` fetched through
`reconciler.publish.sources`, or refused (`{ package, version }` registry sources).
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from reconciler.publish.errors import PublishError
from renderers.spintoml.model import Component, FileMount, LocalSource, UrlSource

WASM_MAGIC = b"\0asm"


@dataclass(frozen=True)
class ShippedFile:
    guest_path: str  # relative to the guest's root, `/`-separated
    source: str  # project-relative path of the file it comes from
    data: bytes


@dataclass
class ComponentFiles:
    wasm: bytes
    wasm_path: str | None  # project-relative path of a local source (None for URL sources)
    files: dict[str, ShippedFile] = field(default_factory=dict)  # by guest path


def _inside(root: Path, path: Path) -> bool:
    resolved = path.resolve()
    return resolved == root or root in resolved.parents


def _read(path: Path, root: Path, where: str, what: str) -> bytes:
    if not _inside(root, path):
        raise PublishError(where, f"{what} {path} leads out of the checkout")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PublishError(where, f"cannot read {what} {path}: {exc.strerror}") from None


def _files_below(directory: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        out += [Path(dirpath) / name for name in sorted(filenames) if (Path(dirpath) / name).is_file()]
    return out


def _looks_like_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _mount_files(mount: FileMount, project: Path, where: str) -> list[tuple[str, Path]]:
    """(guest path, host file) of one `files` entry."""
    if mount.destination is None:
        pattern = mount.source
        if pattern in ("..", ".") or pattern.endswith(("/..", "/.")):
            raise PublishError(where, f"files pattern {pattern!r} cannot end in '.' or '..'")
        path = project / pattern
        if path.is_dir():
            return [
                (f"{pattern.rstrip('/')}/{f.relative_to(path).as_posix()}", f) for f in _files_below(path)
            ]
        if path.is_file():
            return [(PurePosixPath(pattern).as_posix(), path)]
        if not _looks_like_glob(pattern):
            raise PublishError(where, f"files entry {pattern!r} does not exist and is not a glob pattern")
        found = glob.glob(pattern, root_dir=project, recursive=True, include_hidden=True)
        return [(PurePosixPath(m).as_posix(), project / m) for m in sorted(found) if (project / m).is_file()]
    source = project / mount.source
    dest = mount.destination.lstrip("/")
    if source.is_dir():
        prefix = f"{dest.rstrip('/')}/" if dest.rstrip("/") else ""
        return [(prefix + f.relative_to(source).as_posix(), f) for f in _files_below(source)]
    if source.is_file():
        if not dest or dest.endswith("/"):
            raise PublishError(where, f"{mount.destination!r} is not a valid destination file name")
        return [(dest, source)]
    raise PublishError(where, f"files source {mount.source!r} does not exist")


def component_files(component: Component, project: Path, root: Path, where: str) -> dict[str, ShippedFile]:
    """Every file of the component by guest path (a later mount replaces an earlier one, as copies do)."""
    out: dict[str, ShippedFile] = {}
    for mount in component.files:
        for guest, host in _mount_files(mount, project, where):
            rel = host.relative_to(project).as_posix() if _inside(project, host) else host.as_posix()
            if any(fnmatch.fnmatchcase(rel, pattern) for pattern in component.exclude_files):
                continue
            guest = PurePosixPath(guest).as_posix()
            if guest.startswith("../") or "/../" in guest:
                raise PublishError(where, f"files entry maps {rel!r} outside the guest's root")
            out[guest] = ShippedFile(guest, rel, _read(host, root, where, "file"))
    return out


UrlFetcher = Callable[[str, str, str], bytes]  # (url, digest, where) -> verified bytes


def component_content(
    component: Component, project: Path, root: Path, where: str, fetch_url: UrlFetcher
) -> ComponentFiles:
    """The component's Wasm (read or fetched, checked to be Wasm) and its files."""
    source = component.source
    if isinstance(source, LocalSource):
        path = project / source.path
        wasm = _read(path, root, where, "source")
        wasm_path: str | None = os.path.normpath(source.path).replace(os.sep, "/")
    elif isinstance(source, UrlSource):
        wasm, wasm_path = fetch_url(source.url, source.digest, where), None
    else:
        raise PublishError(
            where, "registry (package) sources cannot be published; use a file or { url, digest }"
        )
    if not wasm.startswith(WASM_MAGIC):
        raise PublishError(where, "the source is not a Wasm binary (no \\0asm header); build it first")
    return ComponentFiles(wasm, wasm_path, component_files(component, project, root, where))


def all_paths(contents: Iterable[ComponentFiles]) -> list[str]:
    """Every project-relative path the contents were read from (for the last-change commit lookup)."""
    out = []
    for content in contents:
        if content.wasm_path:
            out.append(content.wasm_path)
        out += [f.source for f in content.files.values()]
    return out
