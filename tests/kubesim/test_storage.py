"""The SQLite store: WAL + synchronous=NORMAL, group commit, write-through cache, bounded event log,
reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kubesim import storage


def _obj(name: str, rv: int, **data: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)},
        "data": data,
    }


def test_event_log_is_bounded_in_memory_and_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "EVENT_LOG_SIZE", 50)
    path = tmp_path / "s.db"
    store = storage.Store(str(path))
    for i in range(300):
        store.put("configmaps", "ns", f"c{i % 7}", _obj(f"c{i % 7}", store.next_rv(), i=str(i)), "MODIFIED")
    assert len(store.events) == 50 and store.events[-1].rv == store.rv == 300
    assert store.oldest_event_rv() == 251
    store.close()
    with sqlite3.connect(path) as db:
        on_disk = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        assert on_disk <= 50 + 50 // 10
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = storage.Store(str(path))
    assert again.rv == 300 and len(again.events) == 50
    assert [e.obj["data"] for e in again.items("configmaps")] == [
        {"i": str(max(i for i in range(300) if i % 7 == k))} for k in range(7)
    ]
    assert again.integrity_check() == "ok"
    again.close()


def test_synchronous_normal_and_delete(tmp_path: Path) -> None:
    store = storage.Store(str(tmp_path / "t.db"))
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: kill -9 safe
    entry = store.put("configmaps", "ns", "a", _obj("a", store.next_rv()), "ADDED")
    assert store.get("configmaps", "ns", "a") == entry
    store.delete("configmaps", "ns", "a", _obj("a", store.next_rv()))
    assert store.get("configmaps", "ns", "a") is None
    assert [e.type for e in store.events] == ["ADDED", "DELETED"]
    store.close()


def test_unopenable_state_names_the_path(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(storage.StoreError) as info:
        storage.Store(str(bad))
    assert str(bad) in str(info.value)


def test_state_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    store = storage.Store(str(path))
    store.put("secrets", "ns", "s", _obj("s", store.next_rv()), "ADDED")
    for f in tmp_path.iterdir():
        assert f.stat().st_mode & 0o077 == 0, f
    store.close()


def test_one_process_at_a_time_owns_a_state_file(tmp_path: Path) -> None:
    """The cache and the resourceVersion counter live in memory: a second kubesim on the same file
    would hand out the same resourceVersions (seen as `UNIQUE constraint failed: events.rv`)."""
    import subprocess
    import sys
    import time

    path = tmp_path / "shared.db"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"from kubesim import storage; import time; s = storage.Store({str(path)!r});"
         " print('open', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(storage.StoreError) as info:
            storage.Store(str(path))
        assert str(path) in str(info.value) and f"pid {holder.pid}" in str(info.value)
        started = time.monotonic()
        with pytest.raises(storage.StoreError):
            storage.Store(str(path), lock_wait=0.5)  # waits that long, then gives up
        assert time.monotonic() - started >= 0.5
    finally:
        holder.kill()
        holder.wait()
    again = storage.Store(str(path), lock_wait=5)  # a killed owner's lock is released with it
    again.close()
