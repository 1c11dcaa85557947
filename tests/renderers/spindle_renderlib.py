"""Helpers shared by the renderer tests: build a RepoTree by hand (no discovery), write repo
files, mutate documents at a field path, and normalise rendered objects for comparison with
hand-written expectations."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from renderers.errors import Location
from renderers.meta import MANAGED_BY_LABEL, SOURCE_PATH_ANNOTATION
from renderers.model import RepoTree, SourceDoc

KINDS = {"SpinApp": "spinapps", "SpinAppExecutor": "executors", "Shim": "shims"}


def tree_from_docs(docs: Iterable[Any], path: str = "input.yaml", root: Path = Path(".")) -> RepoTree:
    """A RepoTree with each document in the bucket discovery would put it in."""
    tree = RepoTree(root=root)
    for doc in docs:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        bucket = KINDS.get(kind, "others") if isinstance(kind, str) else "others"
        getattr(tree, bucket).append(SourceDoc(doc, Location(path, 1)))
    return tree


def tree_from_yaml(text: str, path: str = "input.yaml", root: Path = Path(".")) -> RepoTree:
    return tree_from_docs((doc for doc in yaml.safe_load_all(text) if doc), path, root)


def write_files(root: Path, files: Mapping[str, str | bytes], dedent: bool = False) -> Path:
    """Write `files` (repo-relative path → content) under `root`; returns `root`."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content) if dedent else content)
    return root


def field_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside a parsed document, parents before children."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += field_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            paths += field_paths(item, (*prefix, i))
    return paths


def set_at(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    """Replace the value at `path` (from `field_paths`) in place."""
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def strip_spindle_marks(obj: dict[str, Any]) -> dict[str, Any]:
    """Remove (after checking) spindle's own label and annotation: the rest must match
    spin-operator / RCM field for field."""
    meta = dict(obj["metadata"])
    labels = dict(meta.pop("labels"))
    assert labels.pop(MANAGED_BY_LABEL) == "spindle", obj
    annotations = dict(meta.pop("annotations"))
    assert annotations.pop(SOURCE_PATH_ANNOTATION), obj
    if labels:
        meta["labels"] = labels
    if annotations or obj["kind"] in ("Deployment", "Service"):
        meta["annotations"] = annotations
    return {**obj, "metadata": meta}


def decode_secret_data(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") != "Secret" or "data" not in obj:
        return obj
    data = {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
    return {**obj, "data": data}
