"""The reconcile history: every ReconcileRecord, in SQLite under spindle's state directory.

One table of records (the full record as compressed JSON plus the columns the queries filter on),
WAL mode so the loop can write while `spindle report` reads, and a schema version in
`PRAGMA user_version`. Each source keeps its newest `keep` records; older ones are deleted.
Secret values are masked again before a record is written (see `reports.records.mask_secrets`).

Errors: `HistoryError` (names the database file) for a database that cannot be opened, is corrupt
or was written by a newer spindle.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from reconciler.changeset import ReconcileRecord
from reconciler.reports.records import mask_secrets, record_from_dict, record_to_dict
from reconciler.statedir import state_dir

SCHEMA_VERSION = 1
DEFAULT_KEEP = 10_000  # records kept per source: about a month at a 5-minute interval

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE records (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        sha TEXT,
        started_utc TEXT NOT NULL,
        finished_utc TEXT,
        mode TEXT NOT NULL,
        ok INTEGER NOT NULL,
        body BLOB NOT NULL  -- zlib-compressed JSON of the whole record
    );
    CREATE INDEX records_source_started ON records (source, started_utc);
    CREATE INDEX records_sha ON records (sha);
    """,
}


class HistoryError(Exception):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"history {path}: {message}")
        self.path = path


def default_path() -> Path:
    return state_dir() / "history.sqlite"


def to_utc(text: str) -> str:
    """An RFC 3339 time as a sortable UTC string; naive times are taken as UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class History:
    def __init__(self, path: Path | None = None, *, keep: int = DEFAULT_KEEP) -> None:
        self.path = path or default_path()
        self.keep = keep
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(self.path, str(exc)) from exc

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise HistoryError(
                self.path,
                f"schema version {version} is newer than this spindle understands ({SCHEMA_VERSION})",
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._db:
                self._db.executescript(_MIGRATIONS[target])
                self._db.execute(f"PRAGMA user_version = {target}")

    # -- writing ------------------------------------------------------------------------------

    def add(self, record: ReconcileRecord) -> int:
        record = mask_secrets(record)
        body = zlib.compress(json.dumps(record_to_dict(record), sort_keys=True, default=str).encode(), 6)
        row = (
            record.source,
            record.revision.sha if record.revision else None,
            to_utc(record.started),
            to_utc(record.finished) if record.finished else None,
            record.mode,
            int(record.ok),
            body,
        )
        with self._lock:
            try:
                with self._db:
                    cur = self._db.execute(
                        "INSERT INTO records (source, sha, started_utc, finished_utc, mode, ok, body)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    # Retention: the newest `keep` records of each source.
                    self._db.execute(
                        "DELETE FROM records WHERE source = ? AND id NOT IN (SELECT id FROM records"
                        " WHERE source = ? ORDER BY started_utc DESC, id DESC LIMIT ?)",
                        (record.source, record.source, self.keep),
                    )
            except sqlite3.Error as exc:
                raise HistoryError(self.path, f"cannot store record of {record.source}: {exc}") from exc
        return int(cur.lastrowid or 0)

    # -- queries (newest first) ---------------------------------------------------------------

    def last(self, n: int = 1, *, source: str | None = None) -> list[ReconcileRecord]:
        return self._select("1=1", (), source, limit=n)

    def by_revision(self, sha_prefix: str, *, source: str | None = None) -> list[ReconcileRecord]:
        prefix = sha_prefix.lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            return []
        return self._select("substr(sha, 1, length(?)) = ?", (prefix, prefix), source)

    def since(self, moment: datetime, *, source: str | None = None) -> list[ReconcileRecord]:
        return self._select("started_utc >= ?", (to_utc(moment.isoformat()),), source)

    def _select(
        self, where: str, args: tuple[str, ...], source: str | None, limit: int | None = None
    ) -> list[ReconcileRecord]:
        sql = f"SELECT body FROM records WHERE {where}"
        params: list[str | int] = list(args)
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        sql += " ORDER BY started_utc DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            try:
                rows = self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise HistoryError(self.path, str(exc)) from exc
        out: list[ReconcileRecord] = []
        for (body,) in rows:
            try:
                text = body if isinstance(body, str) else zlib.decompress(body)  # early rows: plain JSON
                out.append(record_from_dict(json.loads(text)))
            except (ValueError, KeyError, TypeError, zlib.error) as exc:
                raise HistoryError(self.path, f"unreadable record: {exc}") from exc
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
