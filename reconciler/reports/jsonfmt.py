"""JSON reports: a list of records, stable key order, for machines."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.changeset import ReconcileRecord
from reconciler.reports.records import record_to_dict


def render(records: Sequence[ReconcileRecord]) -> str:
    return json.dumps([record_to_dict(r) for r in records], indent=2, sort_keys=True, default=str) + "\n"
