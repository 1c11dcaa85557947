"""Key-value stores backed by SQLite, one database file per store label.

Serves `fermyon:spin/key-value` and `wasi:keyvalue` (store, atomics, batch). A component may
open only the labels in its `key_value_stores`; `default` is always available, other labels need
a `[key_value_store.<label>]` of type "spin" in the runtime config.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shim import hostlink
from shim.codec import Err, Ok, V
from shim.runtime_config import KeyValueStore

_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)"


class Stores:
    """Where each label's database lives; connections are per thread (sqlite3 objects are not
    shareable) and reused across requests."""

    def __init__(self, state_dir: Path, configured: Mapping[str, KeyValueStore]) -> None:
        self.state_dir = state_dir
        self.configured = configured
        self._local = threading.local()

    def path(self, label: str) -> Path | None:
        cfg = self.configured.get(label)
        if cfg is None:
            return self.state_dir / f"kv-{label}.db" if label == "default" else None
        if cfg.type != "spin":
            return None
        if cfg.path:
            p = Path(cfg.path)
            return p if p.is_absolute() else self.state_dir / p
        return self.state_dir / f"kv-{label}.db"

    def connect(self, label: str) -> sqlite3.Connection | None:
        conns: dict[str, sqlite3.Connection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(label)
        if conn is None:
            path = self.path(label)
            if path is None:
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            conns[label] = conn
        return conn


@dataclass
class _Handle:
    conn: sqlite3.Connection


def host_impls(stores: Stores, allowed: Collection[str]) -> hostlink.Implementations:
    def conn_of(rep: int) -> sqlite3.Connection:
        h: _Handle = hostlink.current().get(rep)
        return h.conn

    def open_(label: str, no_store: Any) -> Any:
        if label not in allowed:
            return Err(V("access-denied"))
        conn = stores.connect(label)
        if conn is None:
            return Err(no_store)
        return Ok(hostlink.current().new("store", _Handle(conn)))

    def get(rep: int, key: str) -> Any:
        row = conn_of(rep).execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return Ok(None if row is None else bytes(row[0]))

    def set_(rep: int, key: str, value: bytes) -> Any:
        conn_of(rep).execute("INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE "
                             "SET value=excluded.value", (key, value))
        return Ok()

    def delete(rep: int, key: str) -> Any:
        conn_of(rep).execute("DELETE FROM kv WHERE key=?", (key,))
        return Ok()

    def exists(rep: int, key: str) -> Any:
        return Ok(conn_of(rep).execute("SELECT 1 FROM kv WHERE key=?", (key,)).fetchone() is not None)

    def keys(rep: int) -> list[str]:
        return [r[0] for r in conn_of(rep).execute("SELECT key FROM kv ORDER BY key")]

    def increment(rep: int, key: str, delta: int) -> Any:
        conn = conn_of(rep)
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
            current = int(bytes(row[0]).decode() or 0) if row else 0
            new = current + delta
            conn.execute("INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE "
                         "SET value=excluded.value", (key, str(new).encode()))
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        return Ok(new)

    spin = "fermyon:spin/key-value#"
    wkv = "wasi:keyvalue/store#"
    return {
        spin + "[static]store.open": lambda label: open_(label, V("no-such-store")),
        spin + "[method]store.get": get,
        spin + "[method]store.set": set_,
        spin + "[method]store.delete": delete,
        spin + "[method]store.exists": exists,
        spin + "[method]store.get-keys": lambda rep: Ok(keys(rep)),
        wkv + "open": lambda label: open_(label, V("no-such-store")),
        wkv + "[method]bucket.get": get,
        wkv + "[method]bucket.set": set_,
        wkv + "[method]bucket.delete": delete,
        wkv + "[method]bucket.exists": exists,
        wkv + "[method]bucket.list-keys": lambda rep, _cursor: Ok({"keys": keys(rep), "cursor": None}),
        "wasi:keyvalue/atomics#increment": increment,
        "wasi:keyvalue/batch#get-many": lambda rep, ks: Ok(
            [None if (v := get(rep, k).value) is None else (k, v) for k in ks]),
        "wasi:keyvalue/batch#set-many": lambda rep, kvs: ([set_(rep, k, v) for k, v in kvs], Ok())[1],
        "wasi:keyvalue/batch#delete-many": lambda rep, ks: ([delete(rep, k) for k in ks], Ok())[1],
    }
