"""Markdown reports, for pull requests, issues and wikis."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.changeset import ReconcileRecord
from reconciler.reports import common


def _cell(text: str) -> str:
    # Table cells: no pipes or newlines may break the row; backticks would end the code span.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _code(text: str) -> str:
    return f"`{_cell(text)}`"


def render(records: Sequence[ReconcileRecord]) -> str:
    if not records:
        return "_No reconcile records._\n"
    return "\n---\n\n".join(_record(r) for r in records)


def _record(r: ReconcileRecord) -> str:
    rev = r.revision
    out = [f"## {_cell(r.source)}: {common.status(r)}", ""]
    out += ["| | |", "|---|---|"]
    if rev is not None:
        out += [
            f"| Revision | {_code(rev.sha)} |",
            f"| Author | {_cell(rev.author)} |",
            f"| Commit time | {common.fmt_time(rev.time)} |",
            f"| Message | {_cell(rev.message.splitlines()[0] if rev.message else '')} |",
        ]
    out += [
        f"| Started | {common.fmt_time(r.started)} |",
        f"| Finished | {common.fmt_time(r.finished)} ({common.duration(r)}) |",
        f"| Mode | {_cell(r.mode)} |",
        "| Summary | "
        + (", ".join(f"{n} {a.value.lower()}" for a, n in common.counts(r)) or "no objects")
        + " |",
        "",
    ]
    if r.errors:
        out += ["**Errors**", ""] + [f"- {_cell(e)}" for e in r.errors] + [""]
    if r.published:
        out += ["| Published project | Image | Commit | Pushed |", "|---|---|---|---|"]
        for p in r.published:
            image = _code(p.reference) if p.reference else f"failed: {_cell(p.error)}"
            commit = _code(p.commit[:12]) if p.commit else "-"
            out.append(f"| {_code(p.project)} | {image} | {commit} | {'yes' if p.pushed else 'no'} |")
        out.append("")
    if r.entries:
        out += ["| Object | Action | Health | Message |", "|---|---|---|---|"]
        for e in sorted(r.entries, key=lambda e: (common.ACTION_ORDER.index(e.action), e.ref)):
            out.append(
                f"| {_code(e.ref.subject)} | {e.action.value} | {e.health.value} | {_cell(e.message)} |"
            )
        out.append("")
    for e in common.detailed(r):
        out += [f"### {_cell(e.ref.subject)} ({e.action.value})", ""]
        if e.source_path:
            out += [f"From {_code(e.source_path)}", ""]
        if e.fields:
            out += ["| Field | Live | Desired | Owned by |", "|---|---|---|---|"]
            for f in e.fields:
                owners = "<br>".join(_cell(common.fmt_owner(o)) for o in f.owners) or "-"
                out.append(
                    f"| {_code(f.path)} | {_code(common.fmt_value(f.live, 200))} "
                    f"| {_code(common.fmt_value(f.desired, 200))} | {owners} |"
                )
            out.append("")
        if e.patch:
            body = json.dumps(list(e.patch), indent=2, sort_keys=True, default=str)
            body = body.replace("```", "`\u200b``")  # a value must not close the fence
            out += ["RFC 6902 patch (live → desired):", "", "```json", body, "```", ""]
    return "\n".join(out) + "\n"
