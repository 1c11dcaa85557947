"""SQLite databases for `fermyon:spin/sqlite` (2.0.0) and `spin:sqlite` (3.0.0), one file per label.

A component may open only the labels in its `sqlite_databases`; `default` is always defined
(`sqlite-default.db` in the state dir), other labels need a `[sqlite_database.<label>]` of type
"spin" in the runtime config (`path` relative to the state dir, or absolute). Failures reach the
guest as the interface's error values: `access-denied`, `no-such-database`, `io(<message>)`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shim import hostlink
from shim.codec import Err, Ok, V
from shim.runtime_config import SqliteDatabase

INTERFACES = ("fermyon:spin/sqlite", "spin:sqlite/sqlite")


class Databases:
    """Where each label's file lives; connections are per thread (sqlite3 objects are not
    shareable) and reused across requests."""

    def __init__(self, state_dir: Path, configured: Mapping[str, SqliteDatabase]) -> None:
        self.state_dir = state_dir
        self.configured = configured
        self._local = threading.local()

    def path(self, label: str) -> Path | None:
        cfg = self.configured.get(label)
        if cfg is None:
            return self.state_dir / "sqlite-default.db" if label == "default" else None
        if cfg.type != "spin":
            return None
        if cfg.path:
            p = Path(cfg.path)
            return p if p.is_absolute() else self.state_dir / p
        return self.state_dir / f"sqlite-{label}.db"

    def connect(self, label: str) -> sqlite3.Connection | None:
        conns: dict[str, sqlite3.Connection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(label)
        if conn is None:
            path = self.path(label)
            if path is None:
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conns[label] = conn
        return conn


@dataclass
class _Handle:
    conn: sqlite3.Connection
    last_rowid: int = 0
    changes: int = 0


def to_param(value: V) -> Any:
    """A guest `value` → a sqlite3 parameter."""
    if value.tag == "null":
        return None
    if value.tag == "blob":
        return bytes(value.value)
    return value.value


def from_column(value: Any) -> V:
    """A sqlite3 column value → a guest `value`."""
    if value is None:
        return V("null")
    if isinstance(value, bool | int):
        return V("integer", int(value))
    if isinstance(value, float):
        return V("real", value)
    if isinstance(value, bytes | bytearray | memoryview):
        return V("blob", bytes(value))
    return V("text", str(value))


def execute(conn: sqlite3.Connection, statement: str, params: Sequence[V]) -> dict[str, Any]:
    """Run one statement; the `query-result` record (columns, rows of values)."""
    cur = conn.execute(statement, [to_param(p) for p in params])
    try:
        columns = [d[0] for d in cur.description or ()]
        rows = [{"values": [from_column(v) for v in row]} for row in cur.fetchall()]
    finally:
        cur.close()
    return {"columns": columns, "rows": rows}


def host_impls(dbs: Databases, allowed: Collection[str]) -> hostlink.Implementations:
    def handle(rep: int) -> _Handle:
        h: _Handle = hostlink.current().get(rep)
        return h

    def open_(label: str) -> Any:
        if label not in allowed:
            return Err(V("access-denied"))
        try:
            conn = dbs.connect(label)
        except sqlite3.Error as exc:
            return Err(V("io", f"database {label!r}: {exc}"))
        if conn is None:
            return Err(V("no-such-database"))
        return Ok(hostlink.current().new("connection", _Handle(conn)))

    def execute_(rep: int, statement: str, params: list[V]) -> Any:
        h = handle(rep)
        try:
            result = execute(h.conn, statement, params)
        except (sqlite3.Error, OverflowError, ValueError) as exc:
            return Err(V("io", str(exc)))
        h.last_rowid = h.conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        h.changes = h.conn.execute("SELECT changes()").fetchone()[0]
        return Ok(result)

    impls: hostlink.Implementations = {}
    for iface in INTERFACES:
        impls[iface + "#[static]connection.open"] = open_
        impls[iface + "#[method]connection.execute"] = execute_
    impls["spin:sqlite/sqlite#[method]connection.last-insert-rowid"] = lambda rep: handle(rep).last_rowid
    impls["spin:sqlite/sqlite#[method]connection.changes"] = lambda rep: handle(rep).changes
    return impls
