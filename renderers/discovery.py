"""Walk a checkout and classify what it holds into a `RepoTree`.

- YAML files (`*.yaml`, `*.yml`, multi-document) and JSON files (`*.json`) are split into
  documents and classified by apiVersion/kind: SpinApp and SpinAppExecutor
  (`core.spinkube.dev/v1alpha1`), Shim (`runtime.spinkube.dev/v1alpha1`), anything else with
  apiVersion, kind and metadata.name is passed through to `others`. A `v1 List` is unpacked.
  JSON files that are not Kubernetes objects (package.json, tsconfig.json, ...) are skipped:
  a JSON file is only read as a manifest when its top-level object has `apiVersion` or `kind`.
- `spin.toml` files are Spin projects: parsed and validated (`renderers.spintoml`); those with an
  `[application.tool.spindle]` table are scaffolded (`renderers.tooltable`) into
  `RepoTree.scaffolded`.
- `.spindleignore` at the root (gitignore syntax) excludes paths. Hidden files and directories
  (`.git`, `.github/workflows`, `.gitlab-ci.yml`, `.pre-commit-config.yaml`, ...) are never
  manifests and are always skipped, and so are symlinks that lead out of the checkout (an
  error: a repo must not make spindle read files elsewhere on the machine). Symlinked
  directories are not followed.

Errors are collected in `RepoTree.errors`; one broken file never hides the others. Locations are
repo-relative POSIX paths.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pathspec

from renderers import spintoml, tooltable
from renderers.errors import DocumentError, Location, ManifestError, RenderError
from renderers.meta import SHIM_API_VERSION, SPINAPP_API_VERSION, builtin_kind_problem, spinkube_kind_problem
from renderers.model import RepoTree, SourceDoc, SpinProject
from renderers.yamldocs import YamlDoc, load_documents

IGNORE_FILE = ".spindleignore"
YAML_SUFFIXES = (".yaml", ".yml")


def discover(root: Path, subpath: str | None = None) -> RepoTree:
    """Classify the checkout at `root` (only below `subpath` when given).

    Raises `FileNotFoundError` when `root` or `subpath` is not a directory inside the checkout
    (a usage error); everything wrong inside the files is returned in `RepoTree.errors`.
    """
    root = root.resolve()
    start = root
    if subpath:
        start = (root / subpath).resolve()
        if start != root and root not in start.parents:
            raise FileNotFoundError(f"{subpath}: not inside the checkout {root}")
    if not start.is_dir():
        raise FileNotFoundError(f"{start}: not a directory")
    tree = RepoTree(root=root)
    ignore = _load_ignore(root, tree)
    for path in _walk(root, start, ignore):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() and not _inside(root, path):
            tree.errors.append(DocumentError("symlink leads out of the checkout; not read", Location(rel)))
            continue
        if path.name == "spin.toml":
            _add_project(tree, path, rel)
        elif path.suffix.lower() in YAML_SUFFIXES:
            _add_yaml(tree, path, rel)
        elif path.suffix.lower() == ".json":
            _add_json(tree, path, rel)
    return tree


def _load_ignore(root: Path, tree: RepoTree) -> pathspec.GitIgnoreSpec | None:
    ignore_file = root / IGNORE_FILE
    if not ignore_file.is_file():
        return None
    try:
        text = ignore_file.read_text(encoding="utf-8")
        return pathspec.GitIgnoreSpec.from_lines(text.splitlines())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        tree.errors.append(DocumentError(f"cannot read ignore file: {exc}", Location(IGNORE_FILE)))
        return None


def _walk(root: Path, start: Path, ignore: pathspec.GitIgnoreSpec | None) -> Iterator[Path]:
    """Files below `start`, sorted, with ignored directories pruned."""
    for dirpath, dirnames, filenames in os.walk(start):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        kept = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            if ignore is not None and ignore.match_file(prefix + name + "/"):
                continue
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if ignore is not None and ignore.match_file(prefix + name):
                continue
            yield here / name


def _inside(root: Path, path: Path) -> bool:
    target = path.resolve()
    return target == root or root in target.parents


def _read(tree: RepoTree, path: Path, rel: str) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as exc:
        tree.errors.append(DocumentError(f"cannot read file: {exc.strerror}", Location(rel)))
        return None


def _add_yaml(tree: RepoTree, path: Path, rel: str) -> None:
    data = _read(tree, path, rel)
    if data is None:
        return
    _add_documents(tree, data, rel)


def _add_documents(tree: RepoTree, data: bytes, rel: str) -> None:
    docs, errors = load_documents(data, rel)
    tree.errors.extend(errors)
    for doc in docs:
        _classify(tree, doc, rel)


def _add_json(tree: RepoTree, path: Path, rel: str) -> None:
    data = _read(tree, path, rel)
    if data is None:
        return
    try:
        probe = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        # Not every JSON file is a manifest, but a broken one that claims to be is an error.
        if b'"apiVersion"' in data or b'"kind"' in data:
            line = getattr(exc, "lineno", None)
            tree.errors.append(DocumentError(f"malformed JSON: {exc}", Location(rel, line)))
        return
    if not isinstance(probe, dict) or not ("apiVersion" in probe or "kind" in probe):
        return
    # JSON is YAML: reparse with the YAML loader to get field lines.
    _add_documents(tree, data, rel)


def _classify(tree: RepoTree, doc: YamlDoc, rel: str) -> None:
    body: Any = doc.body
    where = Location(rel, doc.line)
    if not isinstance(body, dict):
        tree.errors.append(DocumentError("document is not a mapping (a Kubernetes object)", where))
        return
    api_version, kind = body.get("apiVersion"), body.get("kind")
    missing = [key for key, value in (("apiVersion", api_version), ("kind", kind)) if not value]
    if missing:
        tree.errors.append(DocumentError(f"document has no {' and no '.join(missing)}", where))
        return
    if not isinstance(api_version, str) or not isinstance(kind, str):
        tree.errors.append(DocumentError("apiVersion and kind must be strings", where))
        return
    if api_version == "v1" and kind == "List":
        _unpack_list(tree, doc, rel)
        return
    spinkube_problem = spinkube_kind_problem(api_version, kind)
    found = ("apiVersion", spinkube_problem) if spinkube_problem else builtin_kind_problem(api_version, kind)
    if found:
        field, problem = found
        at = Location(rel, doc.lines.get(field, doc.line), field)
        tree.errors.append(DocumentError(problem, at, SourceDoc(body, where).subject))
        return
    _add_object(tree, SourceDoc(body, where, doc.lines))


def _unpack_list(tree: RepoTree, doc: YamlDoc, rel: str) -> None:
    items = doc.body.get("items") or []
    if not isinstance(items, list):
        tree.errors.append(
            DocumentError(
                "List items must be a list", Location(rel, doc.lines.get("items", doc.line), "items")
            )
        )
        return
    for i, item in enumerate(items):
        prefix = f"items[{i}]"
        line = doc.lines.get(prefix, doc.line)
        lines = {
            key[len(prefix) + 1 :]: value for key, value in doc.lines.items() if key.startswith(prefix + ".")
        }
        _classify(tree, YamlDoc(item, doc.index, line, lines, line), rel)


def _add_object(tree: RepoTree, source: SourceDoc, *, scaffolded: bool = False) -> None:
    metadata = source.body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        near = [str(k) for k in source.body if difflib.get_close_matches(str(k), ["metadata"], cutoff=0.75)]
        message, at = f"{source.kind} has no metadata.name", "metadata.name"
        if metadata is None and near:
            message, at = f"{message} (found {near[0]!r}: did you mean 'metadata'?)", near[0]
        tree.errors.append(DocumentError(message, source.at(at)))
        return
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        where = source.at("metadata.namespace")
        tree.errors.append(DocumentError("metadata.namespace must be a non-empty string", where, source.kind))
        return
    if scaffolded:
        tree.scaffolded.append(source)
    elif source.api_version == SPINAPP_API_VERSION and source.kind == "SpinApp":
        tree.spinapps.append(source)
    elif source.api_version == SPINAPP_API_VERSION and source.kind == "SpinAppExecutor":
        tree.executors.append(source)
    elif source.api_version == SHIM_API_VERSION and source.kind == "Shim":
        tree.shims.append(source)
    else:
        tree.others.append(source)


def _add_project(tree: RepoTree, path: Path, rel: str) -> None:
    data = _read(tree, path, rel)
    if data is None:
        return
    loaded = spintoml.load(data, rel, path.parent)
    tree.errors.extend(loaded.errors)
    if loaded.app is None or loaded.lines is None:
        return
    problems: list[RenderError] = []
    docs = tooltable.scaffold_project(loaded.app, rel, loaded.lines, path.parent, problems, tree.root)
    tree.errors.extend(problems)
    tree.projects.append(SpinProject(Location(rel, 1), loaded.app, tuple(docs), loaded.lines, path.parent))
    for doc in docs:
        _add_object(tree, doc, scaffolded=True)


def pin_images(tree: RepoTree, images: Mapping[str, str], failed: Mapping[str, str]) -> RepoTree:
    """`tree` with published projects pinned: each spin.toml path in `images` scaffolds again with that
    image (`REG/REPO@sha256:…`); each one in `failed` deploys nothing and reports its message as an error
    at its `publish` key. Other projects and documents are kept as they are."""
    changed = set(images) | set(failed)
    out = RepoTree(
        root=tree.root,
        spinapps=list(tree.spinapps),
        executors=list(tree.executors),
        shims=list(tree.shims),
        others=list(tree.others),
        scaffolded=[d for d in tree.scaffolded if d.location.path not in changed],
        errors=list(tree.errors),
        projects=[],
    )
    for project in tree.projects:
        rel = project.location.path
        if rel not in changed or project.lines is None or project.project_dir is None:
            out.projects.append(project)
            continue
        if rel in failed:
            line = project.lines.line_of((*tooltable.TOOL_TABLE, "publish"))
            field = "application.tool.spindle.publish"
            subject = f"Spin app {project.app.name}"
            out.errors.append(ManifestError(failed[rel], Location(rel, line, field), subject))
            out.projects.append(replace(project, scaffolded=()))
            continue
        docs = tooltable.scaffold_project(
            project.app, rel, project.lines, project.project_dir, out.errors, tree.root, images[rel]
        )
        out.projects.append(replace(project, scaffolded=tuple(docs)))
        for doc in docs:
            _add_object(out, doc, scaffolded=True)
    return out
