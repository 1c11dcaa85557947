"""What a notification says, built from a run's record: pure functions, one per wire format."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from reconciler.changeset import Action, ReconcileRecord
from reconciler.reports.common import summary

PENDING, SUCCESS, FAILURE = "pending", "success", "failure"
MAX_ERRORS = 10
_GITLAB_STATE = {PENDING: "pending", SUCCESS: "success", FAILURE: "failed"}


def outcome_of(record: ReconcileRecord) -> str:
    return SUCCESS if record.ok else FAILURE


def headline(source: str, sha: str, outcome: str, record: ReconcileRecord | None) -> str:
    """`spindle shop @ 1a2b3c4d5e6f: success (3 configured, 12 unchanged)`."""
    rev = sha[:12] if sha else "(no revision)"
    if record is None:
        return f"spindle {source} @ {rev}: reconcile started"
    text = f"spindle {source} @ {rev}: {outcome} ({summary(record)})"
    if record.errors:
        text += f"; {len(record.errors)} error(s)"
    return text


def event_json(
    source: str, sha: str, outcome: str, record: ReconcileRecord | None, link: str
) -> dict[str, Any]:
    """The generic event. Only counts, object subjects, actions and error lines: no patches, no
    field values, so no Secret value can be in it."""
    doc: dict[str, Any] = {
        "kind": "ReconcileEvent",
        "version": 1,
        "source": source,
        "revision": sha,
        "outcome": outcome,
        "summary": headline(source, sha, outcome, record),
        "link": link,
    }
    if record is not None:
        counts: dict[str, int] = {}
        for e in record.entries:
            counts[e.action.value] = counts.get(e.action.value, 0) + 1
        doc.update(
            mode=record.mode,
            started=record.started,
            finished=record.finished,
            counts=counts,
            changed=[
                {"object": e.ref.subject, "action": e.action.value, "health": e.health.value}
                for e in record.entries
                if e.action not in (Action.UNCHANGED,)
            ][:200],
            errors=record.errors[:MAX_ERRORS],
        )
    return doc


def slack_json(
    source: str, sha: str, outcome: str, record: ReconcileRecord | None, link: str
) -> dict[str, Any]:
    icon = {PENDING: ":hourglass:", SUCCESS: ":white_check_mark:", FAILURE: ":x:"}[outcome]
    text = f"{icon} {headline(source, sha, outcome, record)}"
    if record is not None and record.errors:
        text += "\n" + "\n".join(f"• {e}" for e in record.errors[:MAX_ERRORS])
    if link:
        text += f"\n<{link}|details>"
    return {"text": text}


def github_json(
    source: str, sha: str, outcome: str, record: ReconcileRecord | None, link: str
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "state": outcome,
        "description": headline(source, sha, outcome, record)[:140],
        "context": f"spindle/{source}",
    }
    if link:
        body["target_url"] = link
    return body


def gitlab_json(
    source: str, sha: str, outcome: str, record: ReconcileRecord | None, link: str
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "state": _GITLAB_STATE[outcome],
        "name": f"spindle/{source}",
        "description": headline(source, sha, outcome, record)[:255],
    }
    if link:
        body["target_url"] = link
    return body


def signature(secret: bytes, body: bytes) -> str:
    """The `X-Spindle-Signature-256` header value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
