"""SQLite storage with a write-through in-memory cache and the bounded event log that feeds watches.

Durability: kubesim answers a write only after SQLite has committed it, so every acknowledged
write survives a SIGKILL of kubesim. The database runs in WAL mode with `synchronous=NORMAL`: a
commit has written its pages to the WAL file (the kernel holds them) before it returns, and the
WAL is fsynced when it is checkpointed into the database, every half second on a thread of its
own. A power cut or kernel crash can therefore lose the writes of the last moment, never corrupt
the database. (`synchronous=FULL`, an fsync per commit, costs 0.5-2 ms a commit on this machine's
disk, more than the whole rest of an apply.)

Group commit: writers (who hold `Store.lock` around their read-modify-write sequences) do not
commit inside it. `put` and `delete` queue the row and return; `settle()`, which a request calls
once it has let go of the lock and before it answers, commits everything queued so far (its own
writes and other writers') in one transaction, unless another thread's commit is under way, which
it then waits for. A writer sees its and earlier writers' queued writes (the pending overlay,
visible only to the thread holding `Store.lock`); everybody else (gets, lists, watches) sees
committed state only: the cache and the event log change only after SQLite has committed, so a
reader never sees a write that could still be lost.

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

# Rows of one multi-row INSERT (SQLite allows 32766 parameters per statement).
_ROWS_PER_STATEMENT = 500
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




class _WriterLock:
    """A re-entrant lock that knows its holder: writers (who hold it) see queued writes."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._owner = 0
        self._depth = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if got:
            self._owner = threading.get_ident()
            self._depth += 1
        return got

    def release(self) -> None:
        self._depth -= 1
        if not self._depth:
            self._owner = 0
        self._lock.release()

    def __enter__(self) -> _WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def held(self) -> bool:
        return self._owner == threading.get_ident()


@dataclass
class _Write:
    """One queued row change: a put (entry set) or a delete (entry is the final state)."""

    res: str
    ns: str
    name: str
    event: str  # ADDED | MODIFIED | DELETED
    entry: Entry


class Store:
    def __init__(self, path: str, *, lock_wait: float = 0.0) -> None:
        """Open (or create) the state at `path`; a file another process has open is waited for
        up to `lock_wait` seconds, then refused."""
        self.path = path
        self.lock = _WriterLock()
        # Committed state (cache, event log, rv) changes under `_state`; watchers wait on `changed`.
        self._state = threading.RLock()
        self.changed = threading.Condition(self._state)
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
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints (copying the WAL into the database) run on their own thread, not inside
            # the commit a request waits for.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the state database {path}: {exc}") from exc
        self._objects: dict[str, dict[tuple[str, str], Entry]] = {}
        self.events: deque[Event] = deque(maxlen=EVENT_LOG_SIZE)
        self.rv = 0  # committed: what readers see
        # resource → resourceVersion of its newest write (a cheap "did this resource change" stamp)
        self.last_write: dict[str, int] = {}
        self._pending_writes = 0
        try:
            self._load()
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"cannot read the state database {path}: {exc}") from exc
        # Group commit: writes queued by writers, committed by whoever settles first.
        self._assigned = self.rv  # the last resourceVersion handed to a writer
        self._queue: list[_Write] = []
        self._pending: dict[str, dict[tuple[str, str], _Write]] = {}
        self._queue_lock = threading.Lock()
        self._cv = threading.Condition(self._queue_lock)  # a commit ended / the queue changed
        self._committing = False
        self._durable_rv = self.rv
        self._broken: StoreError | None = None
        self._mine = threading.local()
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        if self.path != ":memory:":
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="kubesim-checkpoint",
                                                  daemon=True)
            self._checkpointer.start()

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
        """The object: as committed, or for the writer holding `lock`, as last written."""
        if self.lock.held():
            bucket = self._pending.get(res)
            write = bucket.get((ns, name)) if bucket is not None else None
            if write is not None:
                return None if write.event == "DELETED" else write.entry
        return self._objects.get(res, {}).get((ns, name))

    def _bucket(self, res: str) -> dict[tuple[str, str], Entry]:
        """One resource's objects as this thread may see them (a private dict when merged)."""
        bucket = self._objects.get(res, {})
        pending = self._pending.get(res) if self.lock.held() else None
        if not pending:
            return bucket
        merged = dict(bucket)
        for key, write in list(pending.items()):
            if write.event == "DELETED":
                merged.pop(key, None)
            else:
                merged[key] = write.entry
        return merged

    def items(self, res: str, ns: str | None = None) -> list[Entry]:
        """Entries of one resource (one namespace, or all when ns is None), ordered by namespace/name."""
        with self._state:
            bucket = self._bucket(res)
            keys = sorted(bucket) if ns is None else sorted(k for k in bucket if k[0] == ns)
            return [bucket[k] for k in keys]

    def all_entries(self) -> Iterator[tuple[str, Entry]]:
        with self._state:
            snapshot = [(res, e) for res in list(self._objects) for e in self._bucket(res).values()]
            if self.lock.held():
                fresh = [res for res in list(self._pending) if res not in self._objects]
                snapshot += [(res, e) for res in fresh for e in self._bucket(res).values()]
        yield from snapshot

    def oldest_event_rv(self) -> int:
        return self.events[0].rv if self.events else self.rv + 1

    # -- writes (hold self.lock) -------------------------------------------------------------

    def next_rv(self) -> int:
        return self._assigned + 1

    def put(self, res: str, ns: str, name: str, obj: dict[str, Any], event: str, *, defer: bool = False,
            ) -> Entry:
        """Store obj (whose metadata.resourceVersion the caller already set to next_rv()).

        With `defer` the write is queued and the caller must `settle()` before it acknowledges
        it (the API does, after it let go of `lock`); else this commits it before returning."""
        with self.lock:
            entry = Entry(self._assigned + 1, dumps(obj), obj)
            self._enqueue(_Write(res, ns, name, event, entry))
        if not defer:
            self.settle()
        return entry

    def delete(self, res: str, ns: str, name: str, final: dict[str, Any], *, defer: bool = False) -> Entry:
        """Remove the object; final is its last state (with the deletion's resourceVersion)."""
        with self.lock:
            entry = Entry(self._assigned + 1, dumps(final), final)
            self._enqueue(_Write(res, ns, name, "DELETED", entry))
        if not defer:
            self.settle()
        return entry

    def _enqueue(self, write: _Write) -> None:
        if self._broken is not None:
            raise StoreError(str(self._broken))
        self._assigned = write.entry.rv
        self._mine.rv = write.entry.rv
        with self._queue_lock:
            self._queue.append(write)
            self._pending.setdefault(write.res, {})[(write.ns, write.name)] = write

    def sync(self) -> None:
        """Wait until every write queued so far, by anybody, is committed."""
        self._settle_to(self._assigned)

    def settle(self) -> None:
        """Wait until every write this thread queued is committed (StoreError if it failed)."""
        self._settle_to(getattr(self._mine, "rv", 0))

    def _settle_to(self, rv: int) -> None:
        """Group commit without a committer thread: a waiter finding no commit under way commits
        everything queued (its own writes and others'), the rest wait for it."""
        if not rv or self._durable_rv >= rv:
            return
        with self._cv:
            while self._durable_rv < rv:
                if self._broken is not None:
                    raise StoreError(str(self._broken))
                if self._committing or not self._queue:
                    self._cv.wait(1.0)
                    continue
                batch, self._queue = self._queue, []
                self._committing = True
                self._cv.release()
                try:
                    self._commit(batch)
                finally:
                    self._cv.acquire()
                    self._committing = False
                    self._cv.notify_all()

    # -- checkpoints ---------------------------------------------------------------------------

    def _checkpoint_loop(self) -> None:
        """Fold the WAL into the database every half second (PASSIVE: never blocks a commit)."""
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return
        with contextlib.closing(db):
            while not self._stop_checkpoints.wait(0.5):
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # -- committing ---------------------------------------------------------------------------

    def _write_rows(self, rows: list[_Write]) -> None:
        """Rows in order (a row deleted and written again in one batch ends up written)."""
        if any(w.event == "DELETED" for w in rows):
            for w in rows:
                if w.event == "DELETED":
                    self._db.execute(
                        "DELETE FROM objects WHERE res = ? AND ns = ? AND name = ?", (w.res, w.ns, w.name)
                    )
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO objects (res, ns, name, rv, body) VALUES (?, ?, ?, ?, ?)",
                        (w.res, w.ns, w.name, w.entry.rv, w.entry.text),
                    )
        else:
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(rows))
            self._db.execute(
                f"INSERT OR REPLACE INTO objects (res, ns, name, rv, body) VALUES {values}",
                [x for w in rows for x in (w.res, w.ns, w.name, w.entry.rv, w.entry.text)],
            )
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(rows))
        self._db.execute(
            f"INSERT INTO events (rv, res, ns, type, body) VALUES {values}",
            [x for w in rows for x in (w.entry.rv, w.res, w.ns, w.event, w.entry.text)],
        )

    def _commit(self, batch: list[_Write]) -> None:
        last = batch[-1].entry.rv
        try:
            with self._db:
                self._db.execute("BEGIN")
                # One statement per table and batch: each statement lets go of and takes back the GIL
                # (the handler threads are busy with it), so a batch costs the same few handoffs.
                for start in range(0, len(batch), _ROWS_PER_STATEMENT):
                    self._write_rows(batch[start : start + _ROWS_PER_STATEMENT])
                self._pending_writes += len(batch)
                # Trim the on-disk log now and then rather than on every write.
                if self._pending_writes >= EVENT_LOG_SIZE // 10:
                    self._pending_writes = 0
                    self._db.execute("DELETE FROM events WHERE rv <= ?", (last - EVENT_LOG_SIZE,))
        except sqlite3.Error as exc:
            w = batch[0]
            self._broken = StoreError(f"{self.path}: cannot write {w.res} {w.ns}/{w.name}: {exc}")
            return
        with self._state:
            for w in batch:
                bucket = self._objects.setdefault(w.res, {})
                prev = bucket.get((w.ns, w.name))
                if w.event == "DELETED":
                    bucket.pop((w.ns, w.name), None)
                    prev = None
                else:
                    bucket[(w.ns, w.name)] = w.entry
                self.rv = w.entry.rv
                self.last_write[w.res] = w.entry.rv
                self.events.append(Event(w.entry.rv, w.res, w.ns, w.event, w.entry, prev))
            self.changed.notify_all()
            with self._queue_lock:
                for w in batch:  # what is committed leaves the overlay, unless written again since
                    pending = self._pending.get(w.res)
                    if pending is None:
                        continue
                    if pending.get((w.ns, w.name)) is w:
                        del pending[(w.ns, w.name)]
                    if not pending:
                        del self._pending[w.res]
        self._durable_rv = last

    def integrity_check(self) -> str:
        with self.lock:
            self.settle()
            row = self._db.execute("PRAGMA integrity_check").fetchone()
            return str(row[0])

    def close(self) -> None:
        """Commit what is queued, close the database."""
        with contextlib.suppress(StoreError):
            self.sync()
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=10)
        with self.lock, contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
        self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the owner lock
            self._lock_fd = None
