"""The SQLite reconcile history."""

from __future__ import annotations

import sqlite3
import threading
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from spindle_records import SECRET_VALUE, drift_record

from reconciler.changeset import Action
from reconciler.history import SCHEMA_VERSION, History, HistoryError


def test_round_trip_and_ordering(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as h:
        older = drift_record(sha="a" * 40, started="2026-05-04T09:00:00+00:00")
        newer = drift_record(sha="b" * 40, started="2026-05-04T11:00:00+02:00")  # 09:00Z: same instant
        newest = drift_record(sha="c" * 40, started="2026-05-04T12:00:00Z")
        for r in (older, newer, newest):
            h.add(r)
        got = h.last(2)
        assert [r.revision.sha[0] for r in got if r.revision] == ["c", "b"]
        assert [r.revision.sha[0] for r in h.last(10) if r.revision] == ["c", "b", "a"]
        back = got[0]
        assert back.entries[0].fields[0].owners[0].manager == "kubectl-scale"
        assert back.entries[0].action is Action.CONFIGURED
        assert back.entries[0].patch == newest.entries[0].patch
        assert back.revision == newest.revision


def test_queries_by_revision_source_and_time(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as h:
        h.add(drift_record(source="one", sha="abc123" + "0" * 34, started="2026-05-01T00:00:00Z"))
        h.add(drift_record(source="two", sha="abc999" + "0" * 34, started="2026-05-02T00:00:00Z"))
        h.add(drift_record(source="one", sha="def000" + "0" * 34, started="2026-05-03T00:00:00Z"))
        assert len(h.by_revision("abc")) == 2
        assert [r.source for r in h.by_revision("ABC1")] == ["one"]
        assert h.by_revision("abc", source="one")[0].revision.sha.startswith("abc123")  # type: ignore[union-attr]
        assert h.by_revision("%") == []  # LIKE wildcards are not honoured
        assert [r.source for r in h.last(5, source="one")] == ["one", "one"]
        since = h.since(datetime(2026, 5, 2, tzinfo=UTC))
        assert [r.revision.sha[:3] for r in since if r.revision] == ["def", "abc"]
        assert h.since(datetime(2026, 5, 2, tzinfo=UTC), source="two")[0].source == "two"


def test_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    History(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match=r"h\.sqlite.*newer"):
        History(path)


def test_secret_values_never_stored(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        h.add(drift_record())
        (back,) = h.last(1)
    db = sqlite3.connect(path)
    bodies = [zlib.decompress(body) for (body,) in db.execute("SELECT body FROM records")]
    db.close()
    assert len(bodies) == 1 and b"hello-creds" in bodies[0]
    assert SECRET_VALUE.encode() not in bodies[0]
    secret = next(e for e in back.entries if e.ref.kind == "Secret")
    assert secret.fields[0].live == "***" and secret.fields[0].desired == "***"
    assert secret.patch[0]["value"] == "***" and secret.patch[1]["value"] == {"token": "***"}
    # Non-secret values are kept as they were.
    assert back.entries[0].fields[0].live == 5


def test_writer_and_reader_at_once(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    writer, reader = History(path), History(path)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(30):
                writer.add(drift_record(sha=f"{i:040x}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        reader.last(5)
    for t in threads:
        t.join()
    assert not errors
    assert len(reader.last(100)) == 60
    writer.close()
    reader.close()


def test_unopenable_database_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "h.sqlite"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(HistoryError, match=r"h\.sqlite"):
        History(bad)


def test_retention_keeps_the_newest_records_per_source(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite", keep=3) as h:
        for i in range(6):
            h.add(drift_record(source="a", sha=f"{i:040x}", started=f"2026-05-0{i + 1}T00:00:00Z"))
        h.add(drift_record(source="b", sha="f" * 40))
        assert [r.revision.sha[-1] for r in h.last(10, source="a") if r.revision] == ["5", "4", "3"]
        assert len(h.last(10, source="b")) == 1
