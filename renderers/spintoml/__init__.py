"""Spin application manifests (`spin.toml`, v2 and v1): parse, validate, and the typed model.

    load(data, rel, project_dir) -> Loaded(app: App | None, lines: TomlLines | None, errors)

`parse` reads the TOML, `lines` finds the line of every key, `v2` checks a v2 manifest into
`model.App` and `v1` converts and checks a v1 manifest into the same model, both with the
`checker` (the shared checks) and `rules` (pure value rules). Every problem of a
file is returned (not just the first), each naming the file, line and dotted key. The app is None
when the file has any error.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from renderers.errors import Location, ManifestError
from renderers.spintoml.checker import Checker
from renderers.spintoml.lines import TomlLines
from renderers.spintoml.model import App
from renderers.spintoml.v1 import check_v1
from renderers.spintoml.v2 import check_v2

__all__ = ["App", "Loaded", "TomlLines", "load", "parse"]

_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse(data: bytes | str, rel: str) -> tuple[dict[str, Any] | None, TomlLines | None, list[ManifestError]]:
    """The TOML document and its key lines, or the syntax error."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        assert isinstance(data, bytes)
        bad_line = data.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason}); save the file as UTF-8"
        return None, None, [ManifestError(message, Location(rel, bad_line))]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        line = int(match.group(1)) if match else None
        reason = _TOML_POSITION.sub("", message).strip()
        return None, None, [ManifestError(f"malformed TOML: {reason}", Location(rel, line))]
    return doc, TomlLines(text), []


@dataclass(frozen=True)
class Loaded:
    """A loaded spin.toml: the app (None when there is any error), the key lines (None when the
    TOML is malformed) and every problem found."""

    app: App | None
    lines: TomlLines | None
    errors: list[ManifestError] = field(default_factory=list)


def load(data: bytes | str, rel: str, project_dir: Path | None) -> Loaded:
    """Parse and validate the spin.toml at repo path `rel`. Local paths (component sources,
    `files` sources) are checked relative to `project_dir` unless it is None."""
    doc, lines, errors = parse(data, rel)
    if doc is None or lines is None:
        return Loaded(None, None, errors)
    checker = Checker(rel, lines, project_dir)
    version = doc.get("spin_manifest_version", doc.get("spin_version"))
    if version == 2 and type(version) is int:  # not 2.0 (Spin wants the integer)
        app = check_v2(doc, checker)
    elif version == "1":
        app = check_v1(doc, checker)
    elif version is None:
        typo = difflib.get_close_matches("spin_manifest_version", [str(k) for k in doc], n=1, cutoff=0.8)
        if typo:
            checker.error((typo[0],), f"missing spin_manifest_version: unknown key {typo[0]!r} "
                                      "(did you mean 'spin_manifest_version'?)")
        else:
            checker.error((), 'missing spin_manifest_version (2, or "1" for the old format)')
        app = None
    else:
        key = "spin_manifest_version" if "spin_manifest_version" in doc else "spin_version"
        checker.error((key,), f'unsupported manifest version {version!r} (expected 2, or "1")')
        app = None
    application = doc.get("application")
    name = (
        (application.get("name") if isinstance(application, dict) else None)
        if version == 2
        else doc.get("name")
    )
    if isinstance(name, str) and name:
        for error in checker.errors:
            error.obj = error.obj or f"Spin app {name}"
    return Loaded(app, lines, checker.errors)
