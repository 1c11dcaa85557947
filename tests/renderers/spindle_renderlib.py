"""Helpers shared by the renderer tests: build a RepoTree from YAML text by hand (no discovery),
and normalise rendered objects for comparison with hand-written expectations."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from renderers.errors import Location
from renderers.meta import MANAGED_BY_LABEL, SOURCE_PATH_ANNOTATION
from renderers.model import RepoTree, SourceDoc

KINDS = {"SpinApp": "spinapps", "SpinAppExecutor": "executors", "Shim": "shims"}


def tree_from_yaml(text: str, path: str = "input.yaml", root: Path = Path(".")) -> RepoTree:
    tree = RepoTree(root=root)
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        bucket = KINDS.get(doc.get("kind"), "others")
        getattr(tree, bucket).append(SourceDoc(doc, Location(path, 1)))
    return tree


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
