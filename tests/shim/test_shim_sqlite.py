"""`fermyon:spin/sqlite` and `spin:sqlite` end to end: the Python guest (spin-sdk 3.4.1) runs SQL
against SQLite files in the state dir, through both interfaces; labels from the runtime config;
errors as the interface's values. Plus table tests for the value conversions."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from shim_testlib import GUEST_CACHE, Running, Serve, build_python_app, make_app

from shim import sqlite
from shim.app import LoadOptions, load_app
from shim.codec import V
from shim.engine import EngineBox
from shim.errors import ComponentLoadError

ARTIFACTS = GUEST_CACHE / "artifacts"


@pytest.fixture(scope="module")
def py_wasm() -> Path:
    return build_python_app()


def app(tmp_path: Path, py_wasm: Path, databases: str = '["default", "extra"]') -> Path:
    root = make_app(tmp_path / "app", f"""\
        spin_manifest_version = 2
        [application]
        name = "sql"
        [variables]
        who = {{ default = "x" }}
        [[trigger.http]]
        route = "/..."
        component = "py"
        [component.py]
        source = "app.wasm"
        sqlite_databases = {databases}
    """, guests=())
    (root / "app.wasm").symlink_to(py_wasm)
    return root


def sql(srv: Running, statement: str, *params: Any, db: str = "default", api: str = "v2") -> tuple[int, Any]:
    body = json.dumps({"db": db, "api": api, "statement": statement, "params": list(params)}).encode()
    status, _, out = srv.request("POST", "/sql", body=body)
    return status, json.loads(out) if status == 200 else out.decode()


@pytest.fixture
def runtime_config(tmp_path: Path) -> Path:
    rc = tmp_path / "runtime-config.toml"
    rc.write_text('[sqlite_database.extra]\ntype = "spin"\npath = "extra/labelled.db"\n'
                  '[sqlite_database.remote]\ntype = "libsql"\n')
    return rc


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_queries_with_every_value_type(serve: Serve, tmp_path: Path, py_wasm: Path, runtime_config: Path,
                                       api: str) -> None:
    state = tmp_path / "state"
    srv = serve(app(tmp_path, py_wasm), runtime_config=runtime_config, cache_dir=ARTIFACTS, state_dir=state)
    assert sql(srv, "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)", api=api)[0] == 200
    status, out = sql(srv, "INSERT INTO t VALUES (?, ?, ?, ?, ?)", -(2**63), 1.5, "héllo", {"blob": "00ff"},
                      None, api=api)
    assert status == 200 and out["rows"] == []
    if api == "v3":
        assert (out["rowid"], out["changes"]) == (1, 1)
    status, out = sql(srv, "SELECT i, r, s, b, n FROM t WHERE s = ?", "héllo", api=api)
    assert status == 200
    assert out["columns"] == ["i", "r", "s", "b", "n"]
    assert out["rows"] == [[-(2**63), 1.5, "héllo", {"blob": "00ff"}, None]]
    # the data is a plain SQLite file in the state dir, there after a restart
    with sqlite3.connect(state / "sqlite-default.db") as conn:
        assert conn.execute("SELECT s FROM t").fetchall() == [("héllo",)]


def test_labels_denied_and_errors(serve: Serve, tmp_path: Path, py_wasm: Path, runtime_config: Path) -> None:
    state = tmp_path / "state"
    srv = serve(app(tmp_path, py_wasm, '["extra", "remote"]'), runtime_config=runtime_config,
                cache_dir=ARTIFACTS, state_dir=state)
    assert sql(srv, "CREATE TABLE k (v)", db="extra")[0] == 200
    assert (state / "extra" / "labelled.db").exists()
    assert sql(srv, "SELECT 1", db="default") == (500, "sqlite error: Error_AccessDenied")
    assert sql(srv, "SELECT 1", db="other", api="v3") == (500, "sqlite error: Error_AccessDenied")
    assert sql(srv, "SELECT 1", db="remote") == (500, "sqlite error: Error_NoSuchDatabase")
    status, text = sql(srv, "SELEC nonsense", db="extra")
    assert status == 500 and text.startswith("sqlite error: Error_Io") and "syntax error" in text
    status, text = sql(srv, "INSERT INTO k VALUES (?)", db="extra", api="v3")  # a parameter missing
    assert status == 500 and "Error_Io" in text and "bindings" in text


def test_undefined_label_refused_at_load(engine_box: EngineBox, tmp_path: Path, py_wasm: Path) -> None:
    with pytest.raises(ComponentLoadError, match=r"py.*sqlite database 'extra' is not defined"):
        load_app(app(tmp_path, py_wasm), engine_box.engine, LoadOptions(env={}, cache_dir=ARTIFACTS))


@pytest.mark.parametrize(("value", "param"), [
    (V("integer", 7), 7), (V("real", 0.25), 0.25), (V("text", "a"), "a"), (V("blob", b"\x00"), b"\x00"),
    (V("null"), None),
])
def test_to_param(value: V, param: Any) -> None:
    assert sqlite.to_param(value) == param


@pytest.mark.parametrize(("column", "value"), [
    (7, V("integer", 7)), (True, V("integer", 1)), (0.25, V("real", 0.25)), ("a", V("text", "a")),
    (b"\x01", V("blob", b"\x01")), (memoryview(b"\x02"), V("blob", b"\x02")), (None, V("null")),
])
def test_from_column(column: Any, value: V) -> None:
    assert sqlite.from_column(column) == value
