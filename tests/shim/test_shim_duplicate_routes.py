"""Two triggers on the same route: the first serves, and `shim up` says the other is never used
(as Spin does) instead of dropping it silently."""

from __future__ import annotations

from pathlib import Path

from shim_testlib import make_app, shim_up, spin_toml

from shim.manifest import parse_manifest
from shim.routing import Router

DUPLICATES = spin_toml(("/api/...", "first"), ("/other", "first"), ("/api/...", "second"), name="dups")


def test_router_lists_the_duplicate_routes(tmp_path: Path) -> None:
    app = parse_manifest(DUPLICATES, tmp_path / "spin.toml")
    router = Router(app.http_triggers)
    assert [(dup.component, kept.component, dup.route.raw) for dup, kept in router.duplicates] == [
        ("second", "first", "/api/...")
    ]
    match = router.match("/api/x")
    assert match is not None and match.trigger.component == "first"


def test_shim_up_logs_the_route_that_is_never_used(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", DUPLICATES)
    with shim_up(root, tmp_path, "--workers", "1") as up:
        assert up.get("/api/x")[0] == 200
    assert "route /api/... -> second duplicates the route of first and is never used" in up.output
