"""Outbound PostgreSQL (`fermyon:spin/postgres`, `spin:postgres@3.0.0`) and MySQL
(`fermyon:spin/mysql`) end to end: a Python guest (spin-sdk 3.4.1) against a real PostgreSQL and
MariaDB on loopback, only to `allowed_outbound_hosts`; errors as the interface's values. Plus
table tests for parameters, values and MySQL placeholders."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shim_services import Service, start_mariadb, start_postgres
from shim_testlib import GUEST_CACHE, Running, Serve, build_python_app, free_port, make_app

from shim import outbound_rdbms
from shim.codec import V

ARTIFACTS = GUEST_CACHE / "artifacts"


@pytest.fixture(scope="module")
def wasm() -> Path:
    return build_python_app("pyrdbms", "spin-http")


@pytest.fixture(scope="module")
def postgres() -> Iterator[Service]:
    with start_postgres() as service:
        yield service


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with start_mariadb(tmp_path_factory.mktemp("mariadb")) as service:
        yield service


CLOSED = free_port()


@pytest.fixture
def srv(serve: Serve, tmp_path: Path, wasm: Path, postgres: Service, mariadb: Service) -> Running:
    root = make_app(tmp_path / "app", f"""\
        spin_manifest_version = 2
        [application]
        name = "rdbms"
        [[trigger.http]]
        route = "/..."
        component = "db"
        [component.db]
        source = "app.wasm"
        allowed_outbound_hosts = ["postgres://127.0.0.1:{postgres.port}",
                                  "mysql://127.0.0.1:{mariadb.port}", "postgres://127.0.0.1:{CLOSED}"]
    """, guests=())
    (root / "app.wasm").symlink_to(wasm)
    return serve(root, cache_dir=ARTIFACTS)


def call(srv: Running, api: str, address: str, op: str, statement: str, *params: Any) -> tuple[int, Any]:
    body = json.dumps({"api": api, "address": address, "op": op, "statement": statement,
                       "params": list(params)}).encode()
    status, _, out = srv.request("POST", "/", body=body)
    return status, json.loads(out)["result"] if status == 200 else out.decode()


@pytest.mark.parametrize("api", ["pg2", "pg3"])
def test_postgres(srv: Running, postgres: Service, api: str) -> None:
    url = f"postgres://spin@127.0.0.1:{postgres.port}/spin"
    table = f"t_{api}"
    assert call(srv, api, url, "execute", f"DROP TABLE IF EXISTS {table}") == (200, 0)
    assert call(srv, api, url, "execute", f"CREATE TABLE {table} (i INT, b BIGINT, s TEXT, "
                "f DOUBLE PRECISION, ok BOOLEAN, raw BYTEA, d DATE)") == (200, 0)
    insert = f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7)"
    date = [["date", [2024, 2, 29]]] if api == "pg3" else [["db-null", None]]
    assert call(srv, api, url, "execute", insert, ["int32", 7], ["int64", -(2**40)], ["str", "héllo"],
                ["floating64", 1.5], ["boolean", True], ["binary", "00ff"], *date) == (200, 1)
    status, out = call(srv, api, url, "query", f"SELECT i, b, s, f, ok, raw, d, NULL AS n FROM {table} "
                       "WHERE s = $1", ["str", "héllo"])
    assert status == 200
    assert out["columns"] == [["i", "int32"], ["b", "int64"], ["s", "str"], ["f", "floating64"],
                              ["ok", "boolean"], ["raw", "binary"],
                              ["d", "date" if api == "pg3" else "other"], ["n", "str"]]
    expected_d = ["Date", [2024, 2, 29]] if api == "pg3" else ["DbNull", None]
    assert out["rows"] == [[["Int32", 7], ["Int64", -(2**40)], ["Str", "héllo"], ["Floating64", 1.5],
                            ["Boolean", True], ["Binary", "00ff"], expected_d, ["DbNull", None]]]
    status, text = call(srv, api, url, "query", "SELEC nonsense")
    assert status == 500 and text.startswith("error: Error_QueryFailed") and "syntax error" in text


def test_mysql(srv: Running, mariadb: Service) -> None:
    url = f"mysql://root@127.0.0.1:{mariadb.port}/spin"
    assert call(srv, "mysql", url, "execute", "DROP TABLE IF EXISTS t") == (200, None)
    create = "CREATE TABLE t (i INT, b BIGINT, s TEXT, raw BLOB)"
    assert call(srv, "mysql", url, "execute", create) == (200, None)
    assert call(srv, "mysql", url, "execute", "INSERT INTO t VALUES (?, ?, ?, ?)", ["int32", 7],
                ["int64", 2**40], ["str", "a ? 100% 'x'"], ["binary", "00ff"]) == (200, None)
    status, out = call(srv, "mysql", url, "query", "SELECT i, b, s, raw, '?' AS q FROM t WHERE i = ?",
                       ["int32", 7])
    assert status == 200
    assert out["columns"] == [["i", "int32"], ["b", "int64"], ["s", "str"], ["raw", "binary"], ["q", "str"]]
    assert out["rows"] == [[["Int32", 7], ["Int64", 2**40], ["Str", "a ? 100% 'x'"], ["Binary", "00ff"],
                            ["Str", "?"]]]
    status, text = call(srv, "mysql", url, "query", "SELECT * FROM missing")
    assert status == 500 and "Error_QueryFailed" in text and "doesn't exist" in text


def test_only_allowed_hosts(srv: Running, postgres: Service, mariadb: Service) -> None:
    other_port = f"postgres://spin@127.0.0.1:{postgres.port + 1}/spin"
    status, text = call(srv, "pg2", other_port, "query", "SELECT 1")
    assert status == 500 and "Error_ConnectionFailed" in text and "is not permitted" in text
    status, text = call(srv, "mysql", "mysql://root@localhost/spin", "query", "SELECT 1")
    assert status == 500 and "is not permitted" in text
    status, text = call(srv, "pg3", f"postgres://spin@127.0.0.1:{CLOSED}/spin", "query", "SELECT 1")
    assert status == 500 and "Error_ConnectionFailed" in text and "not permitted" not in text


@pytest.mark.parametrize(("param", "expected"), [
    (V("int32", 5), 5), (V("db-null"), None), (V("binary", b"\x01"), b"\x01"), (V("str", "s"), "s"),
    (V("date", (2024, 1, 2)), dt.date(2024, 1, 2)), (V("time", (1, 2, 3, 4000)), dt.time(1, 2, 3, 4)),
    (V("datetime", (2024, 1, 2, 3, 4, 5, 0)), dt.datetime(2024, 1, 2, 3, 4, 5)),
    (V("timestamp", 0), dt.datetime(1970, 1, 1, tzinfo=dt.UTC)),
])
def test_to_param(param: V, expected: Any) -> None:
    assert outbound_rdbms.to_param(param) == expected


@pytest.mark.parametrize(("data_type", "value", "expected"), [
    ("int16", 3, V("int16", 3)), ("str", "x", V("str", "x")),
    ("binary", memoryview(b"\x02"), V("binary", b"\x02")),
    ("other", 1, V("unsupported")), ("int64", None, V("db-null")),
    ("date", dt.date(2024, 2, 29), V("date", (2024, 2, 29))),
    ("time", dt.time(1, 2, 3, 4), V("time", (1, 2, 3, 4000))),
])
def test_to_value(data_type: str, value: Any, expected: V) -> None:
    assert outbound_rdbms.to_value(data_type, value) == expected


@pytest.mark.parametrize(("statement", "expected"), [
    ("SELECT ?", "SELECT %s"), ("SELECT '?', ?", "SELECT '?', %s"),
    ("LIKE '10%' AND x = ?", "LIKE '10%%' AND x = %s"),
    ('SELECT "a\\"?" , `?`, ?', 'SELECT "a\\"?" , `?`, %s'), ("x % 2", "x %% 2"),
])
def test_mysql_placeholders(statement: str, expected: str) -> None:
    assert outbound_rdbms.mysql_placeholders(statement) == expected
