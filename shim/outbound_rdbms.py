"""Outbound PostgreSQL (`fermyon:spin/postgres` 2.0.0, `spin:postgres` 3.0.0; psycopg) and MySQL
(`fermyon:spin/mysql` 2.0.0, `spin:mysql`; PyMySQL) for guests.

`open` is allowed only to addresses in the component's `allowed_outbound_hosts`
(`postgres://host[:5432]`, `mysql://host[:3306]`), as Spin does: any other is
`connection-failed("address ... is not permitted")` and nothing is dialled. Statements use the
placeholders Spin's drivers take: `$1`, `$2` for PostgreSQL (sent as is, server-side binding),
`?` for MySQL (rewritten to PyMySQL's `%s` outside quotes). Failures are the interface's values:
`connection-failed`, `bad-parameter`, `query-failed`, `value-conversion-failed`. A column type
without a case in the interface is `other` with `unsupported` values (PostgreSQL 2.0.0 has no
date and time cases; 3.0.0 does).

A connection lives as long as the guest's handle (at most the request).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pymysql  # type: ignore[import-untyped]  # no stubs (types-PyMySQL is not a dependency)

from shim import hostlink
from shim.codec import Err, Ok, V
from shim.outbound import HostPattern

PG_V2, PG_V3 = "fermyon:spin/postgres", "spin:postgres/postgres"
MYSQL_IFACES = ("fermyon:spin/mysql", "spin:mysql/mysql")
CONNECT_TIMEOUT = 10

# PostgreSQL type OIDs → db-data-type
_PG_TYPES = {16: "boolean", 21: "int16", 23: "int32", 20: "int64", 700: "floating32", 701: "floating64",
             25: "str", 1043: "str", 1042: "str", 19: "str", 17: "binary", 1082: "date", 1083: "time",
             1114: "datetime", 1184: "timestamp"}
_V3_ONLY = frozenset({"date", "time", "datetime", "timestamp"})
# MySQL field types → db-data-type (text and blobs are told apart by the value: str or bytes)
_MY_TYPES = {1: "int8", 2: "int16", 3: "int32", 9: "int32", 8: "int64", 4: "floating32", 5: "floating64",
             13: "int16"}


def to_param(value: V) -> Any:
    """A guest `parameter-value` → a driver parameter."""
    tag, v = value.tag, value.value
    if tag == "db-null":
        return None
    if tag == "binary":
        return bytes(v)
    if tag == "date":
        return dt.date(*v)
    if tag == "time":
        h, m, s, ns = v
        return dt.time(h, m, s, ns // 1000)
    if tag == "datetime":
        y, mo, d, h, m, s, ns = v
        return dt.datetime(y, mo, d, h, m, s, ns // 1000)
    if tag == "timestamp":
        return dt.datetime.fromtimestamp(v, dt.UTC)
    return v


def to_value(data_type: str, value: Any) -> V:
    """A driver value of a column of `data_type` → a guest `db-value`."""
    if value is None:
        return V("db-null")
    if data_type == "other" or (data_type in _V3_ONLY and not isinstance(value, dt.date | dt.time)):
        return V("unsupported")
    if data_type == "date":
        return V("date", (value.year, value.month, value.day))
    if data_type == "time":
        return V("time", (value.hour, value.minute, value.second, value.microsecond * 1000))
    if data_type == "datetime":
        return V("datetime", (value.year, value.month, value.day, value.hour, value.minute, value.second,
                              value.microsecond * 1000))
    if data_type == "timestamp":
        return V("timestamp", int(value.timestamp()))
    if data_type == "binary":
        return V("binary", bytes(value))
    if data_type == "str":
        return V("str", str(value))
    return V(data_type, value)


def mysql_placeholders(statement: str) -> str:
    """`?` → `%s` outside quotes and `%` → `%%`, for PyMySQL's client-side formatting."""
    out: list[str] = []
    quote: str | None = None
    escaped = False
    for ch in statement:
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            out.append("%%" if ch == "%" else ch)
            continue
        if ch in "'\"`":
            quote = ch
        out.append("%s" if ch == "?" else "%%" if ch == "%" else ch)
    return "".join(out)


def _mysql_type(type_code: int, values: Sequence[Any]) -> str:
    if type_code in _MY_TYPES:
        return _MY_TYPES[type_code]
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bytes | bytearray):
        return "binary"
    if isinstance(sample, str) or sample is None:
        return "str"
    return "other"


@dataclass
class _Conn:
    kind: str  # "pg" or "mysql"
    conn: Any
    v3: bool = False


def _address_allowed(address: str, schemes: tuple[str, ...], patterns: list[HostPattern]) -> bool:
    try:
        url = urlsplit(address)
        port = url.port
    except ValueError:
        return False
    if url.scheme not in schemes or not url.hostname:
        return False
    scheme = "postgres" if url.scheme == "postgresql" else url.scheme
    default = 5432 if scheme == "postgres" else 3306
    return any(p.allows(scheme, url.hostname.lower(), port or default) for p in patterns)


def _connect_mysql(address: str) -> Any:
    url = urlsplit(address)
    return pymysql.connect(host=url.hostname, port=url.port or 3306, user=unquote(url.username or ""),
                           password=unquote(url.password or ""), database=url.path.lstrip("/") or None,
                           connect_timeout=CONNECT_TIMEOUT, autocommit=True)


def host_impls(allowed_outbound_hosts: Sequence[str]) -> hostlink.Implementations:
    patterns = [HostPattern.parse(h) for h in allowed_outbound_hosts]

    def handle(rep: int) -> _Conn:
        c: _Conn = hostlink.current().get(rep)
        return c

    def open_pg(v3: bool) -> Callable[[str], Any]:
        def open_(address: str) -> Any:
            if not _address_allowed(address, ("postgres", "postgresql"), patterns):
                return Err(V("connection-failed", f"address {address} is not permitted"))
            try:
                conn = psycopg.connect(address, connect_timeout=CONNECT_TIMEOUT, autocommit=True,
                                       cursor_factory=psycopg.RawCursor)
            except (psycopg.Error, ValueError) as exc:
                return Err(V("connection-failed", str(exc).strip()))
            return Ok(hostlink.current().new("connection", _Conn("pg", conn, v3)))
        return open_

    def open_mysql(address: str) -> Any:
        if not _address_allowed(address, ("mysql",), patterns):
            return Err(V("connection-failed", f"address {address} is not permitted"))
        try:
            conn = _connect_mysql(address)
        except (pymysql.Error, ValueError) as exc:
            return Err(V("connection-failed", str(exc)))
        return Ok(hostlink.current().new("connection", _Conn("mysql", conn)))

    def run(rep: int, statement: str, params: list[V], rows: bool) -> Any:
        c = handle(rep)
        try:
            args = [to_param(p) for p in params]
        except (ValueError, TypeError, OverflowError) as exc:
            return Err(V("bad-parameter", str(exc)))
        try:
            if c.kind == "pg":
                with c.conn.cursor() as cur:
                    cur.execute(statement, args)
                    return Ok(_pg_rows(cur, c.v3) if rows else max(cur.rowcount, 0))
            with c.conn.cursor() as cur:
                cur.execute(mysql_placeholders(statement), args)
                return Ok(_mysql_rows(cur) if rows else None)
        except (psycopg.Error, pymysql.Error) as exc:
            return Err(V("query-failed", str(exc).strip()))
        except (ValueError, TypeError, OverflowError) as exc:
            return Err(V("value-conversion-failed", str(exc)))

    impls: hostlink.Implementations = {}
    for iface, v3 in ((PG_V2, False), (PG_V3, True)):
        impls[f"{iface}#[static]connection.open"] = open_pg(v3)
    for iface in MYSQL_IFACES:
        impls[f"{iface}#[static]connection.open"] = open_mysql
    for iface in (PG_V2, PG_V3, *MYSQL_IFACES):
        impls[f"{iface}#[method]connection.query"] = lambda rep, s, p: run(rep, s, p, True)
        impls[f"{iface}#[method]connection.execute"] = lambda rep, s, p: run(rep, s, p, False)
    return impls


def _pg_rows(cur: Any, v3: bool) -> dict[str, Any]:
    if cur.description is None:
        return {"columns": [], "rows": []}
    types = []
    for d in cur.description:
        t = _PG_TYPES.get(d.type_code, "other")
        types.append("other" if t in _V3_ONLY and not v3 else t)
    columns = [{"name": d.name, "data-type": t} for d, t in zip(cur.description, types, strict=True)]
    rows = [[to_value(t, v) for t, v in zip(types, row, strict=True)] for row in cur.fetchall()]
    return {"columns": columns, "rows": rows}


def _mysql_rows(cur: Any) -> dict[str, Any]:
    if cur.description is None:
        return {"columns": [], "rows": []}
    data = cur.fetchall()
    types = [_mysql_type(d[1], [r[i] for r in data]) for i, d in enumerate(cur.description)]
    columns = [{"name": d[0], "data-type": t} for d, t in zip(cur.description, types, strict=True)]
    rows = [[to_value(t, v) for t, v in zip(types, row, strict=True)] for row in data]
    return {"columns": columns, "rows": rows}
