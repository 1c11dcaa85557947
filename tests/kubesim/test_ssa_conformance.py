"""Server-side apply conformance table for the pure engine (kubesim.ssa)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubesim import ssa
from kubesim.schema import schema_for

DEPLOY = schema_for("apps/v1", "Deployment")
assert DEPLOY is not None
T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"


def deployment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
        },
    }
    base["spec"].update(spec)
    return base


def apply(live: dict[str, Any] | None, cfg: dict[str, Any], manager: str = "alice", *, force: bool = False,
          now: str = T1) -> ssa.ApplyResult:
    return ssa.apply(copy.deepcopy(live), cfg, manager=manager, api_version="apps/v1", force=force,
                     schema=DEPLOY, now=now)


def test_create_then_conflict_on_replicas() -> None:
    obj = apply(None, deployment(replicas=2), now=T0).object
    with pytest.raises(ssa.ConflictError) as err:
        apply(obj, deployment(replicas=3), "bob")
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
