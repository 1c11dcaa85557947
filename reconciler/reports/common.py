"""Formatting shared by every report renderer: times, values, owners, counts."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from reconciler.changeset import Action, Attribution, ChangeSetEntry, PublishedApp, ReconcileRecord

ACTION_ORDER = [
    Action.CREATED, Action.CONFIGURED, Action.PRUNED, Action.FAILED, Action.SKIPPED, Action.UNCHANGED
]


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fmt_time(text: str | None) -> str:
    moment = parse_time(text)
    if moment is None:
        return text or "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(record: ReconcileRecord) -> str:
    start, end = parse_time(record.started), parse_time(record.finished)
    if start is None or end is None:
        return "-"
    return f"{(end - start).total_seconds():.2f}s"


def fmt_value(value: Any, limit: int | None = None) -> str:
    if value is None:
        return "(absent)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def fmt_owner(owner: Attribution) -> str:
    when = f" at {fmt_time(owner.time)}" if owner.time else ""
    return f"{owner.manager} ({owner.operation}){when}"


def counts(record: ReconcileRecord) -> list[tuple[Action, int]]:
    c = Counter(e.action for e in record.entries)
    return [(a, c[a]) for a in ACTION_ORDER if c[a]]


def summary(record: ReconcileRecord) -> str:
    """`3 created, 1 configured, 12 unchanged`."""
    return ", ".join(f"{n} {a.value.lower()}" for a, n in counts(record)) or "no objects"


def status(record: ReconcileRecord) -> str:
    if not record.ok:
        return "failed"
    return "changes applied" if record.drifted and record.mode == "apply" else (
        "drift detected" if record.drifted else "in sync")


def detailed(record: ReconcileRecord) -> list[ChangeSetEntry]:
    """Entries worth a detail section: drifted ones with fields or a patch, and failures."""
    return [e for e in record.entries if e.fields or e.patch or e.action is Action.FAILED]


def revision_line(record: ReconcileRecord) -> str:
    rev = record.revision
    if rev is None:
        return "(no revision)"
    first = rev.message.splitlines()[0] if rev.message else ""
    return f"{rev.short} by {rev.author or 'unknown'} at {fmt_time(rev.time)}: {first}"


def published_line(p: PublishedApp) -> str:
    """`apps/hello/spin.toml → 127.0.0.1:5000/team/hello@sha256:… (spin, pushed; commit 3f2a9c1d7e5b)`."""
    if p.error:
        return f"{p.project}: publish failed: {p.error}"
    commit = f"commit {p.commit[:12]}" if p.commit else "no commit"
    state = f"pushed {p.bytes_uploaded} bytes" if p.pushed else "already in the registry"
    return f"{p.project} → {p.reference} ({p.format}, {state}; {commit})"
