"""SQLite storage with a write-through in-memory cache and the bounded event log that feeds watches.

Durability: the database runs in WAL mode with `synchronous=FULL`, so every commit fsyncs the WAL
before `commit()` returns, and kubesim answers a write only after its commit: every acknowledged
write survives a SIGKILL *and* a power cut. (`NORMAL` would survive SIGKILL only; a commit costs
~0.2 ms with FULL on this machine, which the apply budget of ~3 ms affords.)

One writer at a time: callers hold `Store.lock` around read-modify-write sequences; the cache is
changed only after SQLite has committed, so a reader never sees a write that could still be lost.

Objects are cached as their JSON text (what a list answer concatenates without re-encoding) plus
the parsed dict, which callers must treat as read-only (`load()` gives a private copy).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubesim.errors import StoreError

# How many watch events are kept (in memory and in SQLite) for resuming a watch.
EVENT_LOG_SIZE = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (res, ns, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    rv INTEGER PRIMARY KEY, res TEXT NOT NULL, ns TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Entry:
    """One stored object: its JSON text and a parsed, read-only view of it."""

    rv: int
    text: str
    obj: dict[str, Any]

    def load(self) -> dict[str, Any]:
        """A private, mutable copy."""
        copy: dict[str, Any] = json.loads(self.text)
        return copy

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.obj.get("metadata", {}).get("labels") or {}
        return labels


@dataclass(frozen=True)
class Event:
    rv: int
    res: str
    ns: str
    type: str  # ADDED | MODIFIED | DELETED
    entry: Entry
    # The state this event replaced (kept in memory only): filtered watches need it to turn a
    # MODIFIED into ADDED/DELETED when an object starts or stops matching their selector.
    prev: Entry | None = None


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _owner_lock(path: str, wait: float) -> int:
    """An exclusive lock on `<path>.lock` (held until its descriptor closes, or the process dies):
    the cache and the resourceVersion counter are per process, so one process owns a state file."""
    lock_path = path + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the state database {path}: {lock_path}: {exc.strerror}") from exc
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise StoreError(
                    f"the state database {path} is in use by another kubesim (pid {holder})"
                ) from None
            time.sleep(0.1)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


class Store:
    def __init__(self, path: str, *, lock_wait: float = 0.0) -> None:
        """Open (or create) the state at `path`; a file another process has open is waited for
        up to `lock_wait` seconds, then refused."""
        self.path = path
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._lock_fd: int | None = None
        if path != ":memory:":
            if not os.path.exists(path):
                # The state holds Secrets: owner-only (SQLite gives -wal/-shm the same mode).
                with contextlib.suppress(OSError):
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._lock_fd = _owner_lock(path, lock_wait)
        try:
            self._open()
        except BaseException:
            self._release()
            raise

    def _open(self) -> None:
        path = self.path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the state database {path}: {exc}") from exc
        self._objects: dict[str, dict[tuple[str, str], Entry]] = {}
        self.events: deque[Event] = deque(maxlen=EVENT_LOG_SIZE)
        self.rv = 0
        # resource → resourceVersion of its newest write (a cheap "did this resource change" stamp)
        self.last_write: dict[str, int] = {}
        self._pending_writes = 0
        try:
            self._load()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"cannot read the state database {path}: {exc}") from exc

    def _load(self) -> None:
        for res, ns, name, rv, body in self._db.execute("SELECT res, ns, name, rv, body FROM objects"):
            self._objects.setdefault(res, {})[(ns, name)] = Entry(rv, body, json.loads(body))
            self.rv = max(self.rv, rv)
        for rv, res, ns, typ, body in self._db.execute(
            "SELECT rv, res, ns, type, body FROM events ORDER BY rv DESC LIMIT ?", (EVENT_LOG_SIZE,)
        ):
            self.events.appendleft(Event(rv, res, ns, typ, Entry(rv, body, json.loads(body))))
            self.rv = max(self.rv, rv)
        row = self._db.execute("SELECT v FROM meta WHERE k = 'rv'").fetchone()
        if row:
            self.rv = max(self.rv, int(row[0]))

    # -- reads -------------------------------------------------------------------------------

    def get(self, res: str, ns: str, name: str) -> Entry | None:
        return self._objects.get(res, {}).get((ns, name))

    def items(self, res: str, ns: str | None = None) -> list[Entry]:
        """Entries of one resource (one namespace, or all when ns is None), ordered by namespace/name."""
        with self.lock:
            bucket = self._objects.get(res, {})
            keys = sorted(bucket) if ns is None else sorted(k for k in bucket if k[0] == ns)
            return [bucket[k] for k in keys]

    def all_entries(self) -> Iterator[tuple[str, Entry]]:
        with self.lock:
            snapshot = [(res, e) for res, bucket in self._objects.items() for e in bucket.values()]
        yield from snapshot

    def oldest_event_rv(self) -> int:
        return self.events[0].rv if self.events else self.rv + 1

    # -- writes (hold self.lock) -------------------------------------------------------------

    def next_rv(self) -> int:
        return self.rv + 1

    def put(self, res: str, ns: str, name: str, obj: dict[str, Any], event: str) -> Entry:
        """Store obj (whose metadata.resourceVersion the caller already set to next_rv())."""
        with self.lock:
            rv = self.rv + 1
            text = dumps(obj)
            try:
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.execute(
                        "INSERT OR REPLACE INTO objects (res, ns, name, rv, body) VALUES (?, ?, ?, ?, ?)",
                        (res, ns, name, rv, text),
                    )
                    self._log(rv, res, ns, event, text)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot write {res} {ns}/{name}: {exc}") from exc
            entry = Entry(rv, text, obj)
            bucket = self._objects.setdefault(res, {})
            prev = bucket.get((ns, name))
            bucket[(ns, name)] = entry
            self._publish(Event(rv, res, ns, event, entry, prev))
            return entry

    def delete(self, res: str, ns: str, name: str, final: dict[str, Any]) -> Entry:
        """Remove the object; final is its last state (with the deletion's resourceVersion)."""
        with self.lock:
            rv = self.rv + 1
            text = dumps(final)
            try:
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.execute(
                        "DELETE FROM objects WHERE res = ? AND ns = ? AND name = ?", (res, ns, name)
                    )
                    self._log(rv, res, ns, "DELETED", text)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot delete {res} {ns}/{name}: {exc}") from exc
            entry = Entry(rv, text, final)
            self._objects.get(res, {}).pop((ns, name), None)
            self._publish(Event(rv, res, ns, "DELETED", entry))
            return entry

    def _log(self, rv: int, res: str, ns: str, event: str, text: str) -> None:
        self._db.execute(
            "INSERT INTO events (rv, res, ns, type, body) VALUES (?, ?, ?, ?, ?)", (rv, res, ns, event, text)
        )
        self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('rv', ?)", (str(rv),))
        self._pending_writes += 1
        # Trim the on-disk log now and then rather than on every write.
        if self._pending_writes >= EVENT_LOG_SIZE // 10:
            self._pending_writes = 0
            self._db.execute("DELETE FROM events WHERE rv <= ?", (rv - EVENT_LOG_SIZE,))

    def _publish(self, event: Event) -> None:
        self.rv = event.rv
        self.last_write[event.res] = event.rv
        self.events.append(event)
        self.changed.notify_all()

    def integrity_check(self) -> str:
        with self.lock:
            row = self._db.execute("PRAGMA integrity_check").fetchone()
            return str(row[0])

    def close(self) -> None:
        with self.lock, contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the owner lock
            self._lock_fd = None
