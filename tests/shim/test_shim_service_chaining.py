"""Service chaining: the Python guest (spin-sdk 3.4.1) calls `http://<component>.spin.internal`,
which runs that component in-process; allowed only by `allowed_outbound_hosts`; and
SPIN_COMPONENTS_TO_RETAIN refuses a retained component chaining to one it drops (table tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shim_testlib import GUEST_CACHE, Running, Serve, build_python_app, make_app

from shim.errors import ManifestError
from shim.manifest import chaining_target, load_manifest, retain_components

ARTIFACTS = GUEST_CACHE / "artifacts"


@pytest.fixture(scope="module")
def py_wasm() -> Path:
    return build_python_app()


def chained_app(tmp_path: Path, py_wasm: Path) -> Path:
    root = make_app(tmp_path / "app", """\
        spin_manifest_version = 2
        [application]
        name = "chain"
        [variables]
        who = { default = "x" }
        [[trigger.http]]
        route = "/front/..."
        component = "front"
        [[trigger.http]]
        route = "/back/..."
        component = "back"
        [[trigger.http]]
        route = "/any/..."
        component = "any"
        [[trigger.http]]
        route = { private = true }
        component = "hidden"
        [component.front]
        source = "app.wasm"
        allowed_outbound_hosts = ["http://back.spin.internal", "http://hidden.spin.internal"]
        [component.back]
        source = "app.wasm"
        [component.hidden]
        source = "app.wasm"
        [component.any]
        source = "app.wasm"
        allowed_outbound_hosts = ["http://*.spin.internal"]
    """, guests=())
    (root / "app.wasm").symlink_to(py_wasm)
    return root


def out(srv: Running, caller: str, url: str) -> tuple[int, str]:
    status, _, body = srv.request("GET", f"/{caller}/out?url={url}")
    return status, body.decode()


def test_chained_requests_run_in_process(serve: Serve, tmp_path: Path, py_wasm: Path) -> None:
    srv = serve(chained_app(tmp_path, py_wasm), cache_dir=ARTIFACTS)
    # the target sees the whole path as path info, under a synthetic "/..." route
    assert out(srv, "front", "http://back.spin.internal/some/path") == (
        200, "upstream 200: hello GET /some/path")
    # a private component is reachable only this way
    assert out(srv, "front", "http://hidden.spin.internal/x") == (
        200, "upstream 200: hello GET /x")
    assert srv.request("GET", "/hidden/x")[0] == 404
    # the target's failure is its 500 (the SDK answers it), not the caller's
    assert out(srv, "front", "http://back.spin.internal/boom") == (200, "upstream 500: ")
    # chaining is outbound networking: only where allowed_outbound_hosts says
    status, text = out(srv, "back", "http://front.spin.internal/")
    assert status == 502 and "HttpRequestDenied" in text
    status, text = out(srv, "front", "http://any.spin.internal/")
    assert status == 502 and "HttpRequestDenied" in text
    assert out(srv, "any", "http://back.spin.internal/w") == (200, "upstream 200: hello GET /w")
    status, text = out(srv, "any", "http://nosuch.spin.internal/")
    assert status == 502 and "DestinationNotFound" in text


@pytest.mark.parametrize(("retain", "error"), [
    ("front,back,hidden", None),
    ("back", None),  # chaining only from dropped components
    ("front,back", "Selected component 'front' cannot use service chaining to unselected component: "
                   'allowed_outbound_hosts = ["http://hidden.spin.internal"]'),
    ("any,back,front,hidden", "Selected component 'any' cannot use wildcard service chaining"),
])
def test_components_to_retain_validates_chaining(tmp_path: Path, py_wasm: Path, retain: str,
                                                 error: str | None) -> None:
    app = load_manifest(chained_app(tmp_path, py_wasm) / "spin.toml")
    if error is None:
        assert set(retain_components(app, retain).components) == set(retain.split(","))
    else:
        with pytest.raises(ManifestError, match=error.replace("[", r"\[").replace("]", r"\]")):
            retain_components(app, retain)


@pytest.mark.parametrize(("host", "target"), [
    ("http://back.spin.internal", "back"), ("http://*.spin.internal", "*"),
    ("https://Back.spin.internal:443", "back"),
    ("back.spin.internal", "back"), ("http://example.com", None), ("http://{{ x }}.spin.internal", None),
    ("http://.spin.internal", None), ("*://*:*", None),
])
def test_chaining_target(host: str, target: str | None) -> None:
    assert chaining_target(host) == target
