"""Table tests for the pure SSA parts: normalise, sort, mask, managedFields, diff, inventory."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from reconciler.changeset import Action, Health, ObjectRef
from reconciler.ssa import diff, fieldsv1, health, inventory, mask, nodes, normalize, objects, sort


def deployment(**container: Any) -> dict[str, Any]:
    c = {"name": "web", "image": "img:1", **container}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "a", "namespace": "ns", "creationTimestamp": None},
        "spec": {"template": {"spec": {"containers": [c]}}},
        "status": {"replicas": 1},
    }


@pytest.mark.parametrize(
    ("obj", "path", "expected"),
    [
        (
            deployment(ports=[{"containerPort": 80}]),
            ("spec", "template", "spec", "containers", 0, "ports", 0, "protocol"),
            "TCP",
        ),
        (
            deployment(ports=[{"containerPort": 53, "protocol": "UDP"}]),
            ("spec", "template", "spec", "containers", 0, "ports", 0, "protocol"),
            "UDP",
        ),
        (
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s"},
                "spec": {"ports": [{"port": 80}]},
            },
            ("spec", "ports", 0, "protocol"),
            "TCP",
        ),
        (
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}},
            ("data", "k"),
            base64.b64encode(b"v").decode(),
        ),
        (deployment(), ("status",), None),
        (deployment(), ("metadata", "creationTimestamp"), None),
        (
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "x"},
                "status": {"a": 1},
            },
            ("status", "a"),
            1,
        ),
    ],
)
def test_normalize_desired(obj: dict[str, Any], path: tuple[Any, ...], expected: Any) -> None:
    before = copy.deepcopy(obj)
    out: Any = normalize.desired(obj)
    assert obj == before  # copy-on-write: the input is left alone
    for token in path:
        out = out.get(token) if isinstance(out, dict) else (out[token] if isinstance(out, list) else None)
    assert out == expected


def test_comparable_drops_generated_metadata_and_status() -> None:
    live = deployment()
    live["metadata"].update(
        resourceVersion="7",
        uid="u",
        managedFields=[{"manager": "x"}],
        labels={"a": "b"},
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    )
    assert normalize.comparable(live) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"labels": {"a": "b"}},
        "spec": live["spec"],
    }


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        (
            ["Deployment", "Namespace", "CustomResourceDefinition"],
            ["CustomResourceDefinition", "Namespace", "Deployment"],
        ),
        (["SpinApp", "SpinAppExecutor", "RuntimeClass"], ["RuntimeClass", "SpinAppExecutor", "SpinApp"]),
        (
            ["ValidatingWebhookConfiguration", "Widget", "Service", "Secret"],
            ["Secret", "Service", "Widget", "ValidatingWebhookConfiguration"],
        ),
    ],
)
def test_apply_order(kinds: list[str], expected: list[str]) -> None:
    refs = [ObjectRef("v1", k, None, "x") for k in kinds]
    assert [r.kind for r in sort.apply_order(refs)] == expected
    assert [r.kind for r in sort.prune_order(refs)] == list(reversed(expected))


@pytest.mark.parametrize(
    ("kind", "stage"),
    [
        ("CustomResourceDefinition", sort.Stage.DEFINITIONS),
        ("Namespace", sort.Stage.DEFINITIONS),
        ("RuntimeClass", sort.Stage.CLASSES),
        ("SpinApp", sort.Stage.REST),
        ("Deployment", sort.Stage.REST),
    ],
)
def test_stage_of(kind: str, stage: sort.Stage) -> None:
    assert sort.stage_of(kind) is stage


def secret(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": data}


@pytest.mark.parametrize(
    ("live", "desired", "live_out", "desired_out"),
    [
        ({"a": "x"}, {"a": "x"}, {"a": "***"}, {"a": "***"}),
        ({"a": "x"}, {"a": "y"}, {"a": "*** (before)"}, {"a": "*** (after)"}),
        ({}, {"b": "y"}, {}, {"b": "*** (after)"}),
        ({"c": "x"}, {}, {"c": "*** (before)"}, {}),
    ],
)
def test_mask_pair(
    live: dict[str, str], desired: dict[str, str], live_out: dict[str, str], desired_out: dict[str, str]
) -> None:
    a, b = mask.mask_pair(secret(**live), secret(**desired))
    assert a is not None and b is not None
    assert a["data"] == live_out and b["data"] == desired_out
    assert "x" not in str(a) + str(b) and "y" not in str(a["data"]) + str(b["data"])


def test_mask_leaves_other_kinds() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "x"}}
    assert mask.mask(cm) == cm
    assert mask.mask(secret(a="x"))["data"] == {"a": "***"}


LIVE = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "a",
        "labels": {"team": "x", "spindle.dev/source": "s"},
        "managedFields": [
            {
                "manager": "spindle",
                "operation": "Apply",
                "time": "2026-01-01T10:00:00Z",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:spindle.dev/source": {}}},
                    "f:spec": {
                        "f:template": {
                            "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:name": {}}}}
                        }
                    },
                },
            },
            {
                "manager": "kubectl-edit",
                "operation": "Update",
                "time": "2026-01-01T10:02:00Z",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:team": {}}},
                    "f:spec": {
                        "f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}
                    },
                },
            },
            {
                "manager": "kubectl",
                "operation": "Update",
                "subresource": "scale",
                "time": "2026-01-01T10:03:00Z",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            },
            {
                "manager": "helm",
                "operation": "Update",
                "time": "2026-01-01T09:00:00Z",
                "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {}}}}},
            },
        ],
    },
    "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "web", "image": "img:2"}]}}},
}


@pytest.mark.parametrize(
    ("path", "managers"),
    [
        (("spec", "replicas"), ["kubectl"]),
        (("spec", "template", "spec", "containers", 0, "image"), ["kubectl-edit", "helm"]),
        (("spec", "template", "spec", "containers", 0, "name"), ["spindle", "helm"]),
        (("metadata", "labels", "team"), ["kubectl-edit"]),
        (("metadata", "labels", "other"), []),
    ],
)
def test_owners(path: tuple[Any, ...], managers: list[str]) -> None:
    found = fieldsv1.owners(path, LIVE)
    assert [a.manager for a in found] == managers
    if "kubectl-edit" in managers:
        assert next(a for a in found if a.manager == "kubectl-edit").time == "2026-01-01T10:02:00Z"


def test_fold_merges_kubectl_into_spindle_apply() -> None:
    folded = fieldsv1.fold(LIVE["metadata"]["managedFields"])
    assert folded is not None
    managers = [(e["manager"], e.get("subresource")) for e in folded]
    assert ("kubectl-edit", None) not in managers and ("kubectl", "scale") in managers
    spindle = next(e for e in folded if e["manager"] == "spindle")
    assert "f:team" in spindle["fieldsV1"]["f:metadata"]["f:labels"]
    assert (
        "f:image" in spindle["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    )
    assert fieldsv1.fold([e for e in LIVE["metadata"]["managedFields"] if e["manager"] == "spindle"]) is None


def test_drop_unowned_folded_removes_fields_only_kubectl_keeps() -> None:
    applied = {
        "metadata": {"labels": {"spindle.dev/source": "s"}},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "img:1"}]}}},
    }
    predicted = {
        "metadata": {"labels": {"team": "x", "spindle.dev/source": "s"}},
        "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "web", "image": "img:1"}]}}},
    }
    out = fieldsv1.drop_unowned_folded(predicted, LIVE, applied)
    assert out["metadata"]["labels"] == {"spindle.dev/source": "s"}  # kubectl-edit's label goes
    assert out["spec"]["replicas"] == 5  # subresource writes are not folded
    assert predicted["metadata"]["labels"]["team"] == "x"


@pytest.mark.parametrize(
    ("live", "desired", "paths"),
    [
        ({"spec": {"replicas": 5}}, {"spec": {"replicas": 1}}, [(".spec.replicas", 5, 1)]),
        ({"a": [1, 2]}, {"a": [1, 3]}, [(".a[1]", 2, 3)]),
        ({"a": [1, 2]}, {"a": [1]}, [(".a", [1, 2], [1])]),
        ({"m": {"x": 1}}, {"m": {}}, [(".m.x", 1, None)]),
        ({"m": {}}, {"m": {}}, []),
    ],
)
def test_changed_paths_and_patch(
    live: dict[str, Any], desired: dict[str, Any], paths: list[tuple[str, Any, Any]]
) -> None:
    got = [(diff.dotted(p), a, b) for p, a, b in diff.changed_paths(live, desired)]
    assert got == paths
    import jsonpatch

    assert jsonpatch.apply_patch(live, list(diff.patch(live, desired))) == desired


def test_unified_diff_names_object() -> None:
    text = diff.unified("Deployment/ns/a", {"spec": {"replicas": 5}}, {"spec": {"replicas": 1}})
    assert "--- live/Deployment/ns/a" in text and "-  replicas: 5" in text and "+  replicas: 1" in text


def test_unified_diff_spells_out_shared_values() -> None:
    shared = {"type": "string"}  # renderers reuse one schema dict in several places
    text = diff.unified("CRD/x", None, {"spec": {"a": shared, "b": shared}})
    assert "&id" not in text and "*id" not in text
    assert text.count("+    type: string") == 2


def test_inventory_roundtrip_and_stale() -> None:
    a = ObjectRef("apps/v1", "Deployment", "ns", "a")
    b = ObjectRef("v1", "Service", "ns", "a")
    ns = ObjectRef("v1", "Namespace", None, "ns")
    inv = inventory.Inventory("demo", "abc", {r: inventory.Entry(r, "d", "1") for r in (a, b, ns)})
    cm = inventory.to_configmap(inv)
    assert cm["metadata"]["namespace"] == "spindle-system"
    back = inventory.from_configmap("demo", cm)
    assert back is not None and back.entries == inv.entries and back.revision == "abc"
    assert inventory.stale(back, {b}) == [a, ns]  # reverse apply order: Deployment, then Namespace
    assert inventory.stale(back, {ObjectRef("apps/v2", "Deployment", "ns", "a"), b, ns}) == []
    assert inventory.stale(None, set()) == []
    with pytest.raises(inventory.InventoryError, match="ConfigMap/spindle-system/spindle-inventory-demo"):
        inventory.from_configmap("demo", {"data": {"inventory.json": "{not json"}})


@pytest.mark.parametrize(
    ("annotations", "policy", "force", "prune_off"),
    [
        ({}, objects.SSAPolicy.OVERRIDE, False, False),
        ({"spindle.dev/ssa": "merge", "spindle.dev/force": "enabled"}, objects.SSAPolicy.MERGE, True, False),
        (
            {"spindle.dev/ssa": "IfNotPresent", "spindle.dev/prune": "disabled"},
            objects.SSAPolicy.IF_NOT_PRESENT,
            False,
            True,
        ),
        ({"spindle.dev/ssa": "Ignore"}, objects.SSAPolicy.IGNORE, False, False),
    ],
)
def test_annotations(
    annotations: dict[str, str], policy: objects.SSAPolicy, force: bool, prune_off: bool
) -> None:
    obj = {"metadata": {"annotations": annotations}}
    assert objects.policy_of(obj) is policy
    assert objects.force_enabled(obj) is force
    assert objects.prune_disabled(obj) is prune_off


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('Secret/ns/s: data[k]: Invalid value: "aHVudGVyMg=="', 'Secret/ns/s: data[k]: Invalid value: "***"'),
        ("password hunter2 leaked", "password *** leaked"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_scrub_masks_secret_values_in_messages(message: str, expected: str) -> None:
    assert mask.scrub(message, secret(k="aHVudGVyMg==")) == expected
    config_map = {"kind": "ConfigMap", "apiVersion": "v1", "data": {"k": "aHVudGVyMg=="}}
    assert mask.scrub(message, config_map) == message


def _with(kind: str, conditions: dict[str, str], **extra: Any) -> dict[str, Any]:
    status = {
        "conditions": [{"type": t, "status": s} for t, s in conditions.items()],
        **extra.pop("status", {}),
    }
    return {
        "kind": kind,
        "metadata": extra.pop("metadata", {}),
        "spec": extra.pop("spec", {}),
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (_with("Deployment", {"Available": "True"}, status={"availableReplicas": 1}), Health.HEALTHY),
        (_with("Deployment", {"Available": "False"}), Health.PROGRESSING),
        (_with("Deployment", {"Progressing": "False"}), Health.DEGRADED),
        (
            _with(
                "Deployment",
                {"Available": "True"},
                metadata={"generation": 3},
                status={"observedGeneration": 2},
            ),
            Health.PROGRESSING,
        ),
        (_with("Job", {"Complete": "True"}), Health.HEALTHY),
        (_with("Job", {"Failed": "True"}), Health.DEGRADED),
        (_with("Job", {}), Health.PROGRESSING),
        (_with("CustomResourceDefinition", {"Established": "True"}), Health.HEALTHY),
        (_with("SpinApp", {"Available": "True", "Progressing": "True"}), Health.HEALTHY),
        (_with("SpinApp", {"Progressing": "True"}), Health.PROGRESSING),
        (_with("SpinApp", {"Available": "False", "Progressing": "False"}), Health.DEGRADED),
        (_with("ConfigMap", {}), Health.HEALTHY),
        (None, Health.UNKNOWN),
    ],
)
def test_health(obj: dict[str, Any] | None, expected: Health) -> None:
    assert health.of(obj) is expected


@pytest.mark.parametrize(
    ("operation", "action", "job_health", "label"),
    [
        ("install", Action.CREATED, Health.PROGRESSING, (True, "pending")),
        ("install", Action.UNCHANGED, Health.HEALTHY, (True, "provisioned")),
        ("install", Action.CREATED, Health.DEGRADED, (True, "failed")),
        ("install", Action.FAILED, Health.NOT_CHECKED, (True, "failed")),
        ("uninstall", Action.CREATED, Health.PROGRESSING, (True, "uninstall")),
        ("uninstall", Action.UNCHANGED, Health.HEALTHY, (True, None)),
        ("other", Action.CREATED, Health.HEALTHY, (False, None)),
    ],
)
def test_node_label_follows_job(
    operation: str, action: Action, job_health: Health, label: tuple[bool, str | None]
) -> None:
    assert nodes.wanted_label(operation, action, job_health) == label


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("example-repo", "example-repo"),
        ("/tmp/My Repo/", "tmp-My-Repo"),
        ("", "default"),
        ("x" * 80, "x" * 63),
    ],
)
def test_label_value(text: str, value: str) -> None:
    assert objects.label_value(text) == value
