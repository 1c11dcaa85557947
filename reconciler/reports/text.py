"""Plain-text reports for a terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.changeset import ReconcileRecord
from reconciler.reports import common


def render(records: Sequence[ReconcileRecord]) -> str:
    return "\n".join(_record(r) for r in records) if records else "no reconcile records\n"


def _record(r: ReconcileRecord) -> str:
    lines = [
        f"== {r.source}  [{common.status(r)}]",
        f"revision: {common.revision_line(r)}",
        f"started:  {common.fmt_time(r.started)}   finished: {common.fmt_time(r.finished)}"
        f"   ({common.duration(r)}, mode {r.mode})",
        f"summary:  {common.summary(r)}",
    ]
    lines += [f"error:    {e}" for e in r.errors]
    lines += [f"warning:  {w}" for w in r.warnings]
    lines += [f"published: {common.published_line(p)}" for p in r.published]
    if r.entries:
        width = max(len(e.ref.subject) for e in r.entries)
        lines.append("")
        for e in sorted(r.entries, key=lambda e: (common.ACTION_ORDER.index(e.action), e.ref)):
            msg = f"  {e.message}" if e.message else ""
            row = f"  {e.ref.subject:<{width}}  {e.action.value:<10} {e.health.value:<11}{msg}"
            lines.append(row.rstrip())
    for e in common.detailed(r):
        lines += ["", f"-- {e.ref.subject} ({e.action.value})"]
        if e.source_path:
            lines.append(f"   from {e.source_path}")
        for f in e.fields:
            lines.append(f"   {f.path}: {common.fmt_value(f.live, 80)} -> {common.fmt_value(f.desired, 80)}")
            for o in f.owners:
                lines.append(f"      owned by {common.fmt_owner(o)}")
        if e.patch:
            lines.append("   patch (RFC 6902, live -> desired):")
            lines += [f"     {json.dumps(op, sort_keys=True, default=str)}" for op in e.patch]
    return "\n".join(lines) + "\n"
