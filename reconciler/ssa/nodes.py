"""The Shim node flow: node state labels follow the installer Jobs, as runtime-class-manager
does (label key = the Shim's name; `pending` while the install Job runs, `provisioned` once it
completed, `failed` when it failed or could not be applied; `uninstall` while an uninstall Job
runs, and the label is removed when it completed)."""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.changeset import Action, Health
from reconciler.kube import errors
from reconciler.kube.client import KubeClient
from reconciler.ssa import objects
from reconciler.ssa.manager import Outcome

NODE_NAME = "spinkube.dev/nodeName"
SHIM_NAME = "spinkube.dev/shimName"
OPERATION = "spinkube.dev/operation"


def wanted_label(operation: str, action: Action, health: Health) -> tuple[bool, str | None]:
    """(whether to touch the label, its new value; None removes it) for one installer Job."""
    if operation == "install":
        if action is Action.FAILED or health is Health.DEGRADED:
            return True, "failed"
        if health is Health.HEALTHY:
            return True, "provisioned"
        return True, "pending"
    if operation == "uninstall":
        if health is Health.HEALTHY:
            return True, None
        if action is Action.FAILED or health is Health.DEGRADED:
            return True, "failed"
        return True, "uninstall"
    return False, None


def label_nodes(
    client: KubeClient, outcomes: Iterable[Outcome], nodes: dict[str, dict[str, str]]
) -> list[str]:
    """Patch node labels to follow installer Jobs; returns errors (each naming the node).
    `nodes` maps node name → its current labels, so unchanged labels cost no request."""
    problems: list[str] = []
    for o in outcomes:
        if o.ref.kind != "Job" or o.desired is None:
            continue
        node = objects.annotation(o.desired, NODE_NAME)
        shim = objects.annotation(o.desired, SHIM_NAME)
        op = objects.annotation(o.desired, OPERATION)
        if not (node and shim and op):
            continue
        touch, value = wanted_label(op, o.action, o.health)
        current = nodes.get(node, {})
        if not touch or current.get(shim) == value or (value is None and shim not in current):
            continue
        try:
            client.patch_labels("v1", "Node", node, {shim: value})
        except errors.Unreachable:  # the run stops: not one object's failure
            raise
        except errors.KubeError as exc:
            problems.append(f"Node/{node}: cannot set label {shim}: {exc}")
    return problems
