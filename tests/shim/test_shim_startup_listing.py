"""`spindle shim up` prints, at start, where it serves and each route and Redis channel, as
`spin up` does: the listing itself (table test) and a real `shim up` process's stdout."""

from __future__ import annotations

from pathlib import Path

import pytest
from shim_testlib import make_app, shim_up, spin_toml

from shim.app import LoadOptions, load_app
from shim.engine import EngineBox
from shim.runner import _redacted, startup_lines

ROUTES = spin_toml(("/", "home"), ("/api/...", "api"), ("/exact", "api"), ("{ private = true }", "hidden"),
                   name="listing") + """\
[[trigger.http]]
route = "/static"
static_response = { body = "hi" }
"""


def test_listing(engine_box: EngineBox, tmp_path: Path, artifact_cache: Path) -> None:
    app = load_app(make_app(tmp_path / "app", ROUTES), engine_box.engine,
                   LoadOptions(env={}, cache_dir=artifact_cache, state_dir=tmp_path / "state"))
    try:
        assert startup_lines(app, "127.0.0.1", 3000) == [
            "Serving http://127.0.0.1:3000",
            "Available Routes:",
            "  home: http://127.0.0.1:3000/",
            "  api: http://127.0.0.1:3000/api (wildcard)",
            "  api: http://127.0.0.1:3000/exact",
            "  trigger-4 (static response): http://127.0.0.1:3000/static",
        ]
        assert startup_lines(app, "::1", 80)[0] == "Serving http://[::1]:80"
    finally:
        app.close()


@pytest.mark.parametrize(("address", "shown"), [
    ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
    ("redis://user:secret@h:1", "redis://user:***@h:1"),
    ("redis://:secret@h:1", "redis://:***@h:1"),
    ("redis://user@h:1", "redis://user@h:1"),
])
def test_passwords_are_not_printed(address: str, shown: str) -> None:
    assert _redacted(address) == shown


def test_shim_up_prints_the_listing_once(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", ROUTES)
    with shim_up(root, tmp_path, "--workers", "2") as up:
        pass
    port = up.port
    head = f"Serving http://127.0.0.1:{port}\nAvailable Routes:\n  home: http://127.0.0.1:{port}/\n"
    assert head in up.output
    assert up.output.count("Available Routes:") == 1  # the serving process, not each worker
    assert f"  api: http://127.0.0.1:{port}/api (wildcard)\n" in up.output
