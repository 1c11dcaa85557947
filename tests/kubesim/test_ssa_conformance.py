"""Server-side apply conformance table for the pure engine (kubesim.ssa).

Each case is derived from the documented semantics (Kubernetes "Server-Side Apply" docs and
structured-merge-diff behaviour): ownership, conflicts, force, removal, list/map topologies,
defaults, managedFields bookkeeping.  Persistence-level cases (dry-run, resourceVersion) are
kubesim server tests.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kubesim import ssa
from kubesim.schema import ResourceSchema, schema_for

DEPLOY = schema_for("apps/v1", "Deployment")
SERVICE = schema_for("v1", "Service")
assert DEPLOY is not None and SERVICE is not None
T0, T1, T2, T3 = (
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:01:00Z",
    "2026-01-01T00:02:00Z",
    "2026-01-01T00:03:00Z",
)


def deployment(
    containers: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {},
    }
    if labels is not None:
        obj["metadata"]["labels"] = labels
    if containers is not None:
        obj["spec"]["template"] = {"spec": {"containers": containers}}
    obj["spec"].update(spec)
    return obj


WEB = {"name": "web", "image": "nginx:1.25"}
BASE = deployment([WEB], selector={"matchLabels": {"app": "web"}})


def apply(
    live: dict[str, Any] | None,
    cfg: dict[str, Any],
    manager: str = "alice",
    *,
    force: bool = False,
    now: str = T1,
    schema: ResourceSchema = DEPLOY,
    subresource: str | None = None,
) -> ssa.ApplyResult:
    before = copy.deepcopy(live)
    result = ssa.apply(
        live,
        copy.deepcopy(cfg),
        manager=manager,
        api_version=schema.api_version,
        force=force,
        schema=schema,
        now=now,
        subresource=subresource,
    )
    assert live == before, "the engine must not mutate the live object"
    return result


def update(
    live: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str = "kubectl-edit",
    *,
    now: str = T2,
    schema: ResourceSchema = DEPLOY,
    subresource: str | None = None,
    api_version: str | None = None,
) -> ssa.UpdateResult:
    return ssa.update(
        live,
        copy.deepcopy(new),
        manager=manager,
        api_version=api_version or schema.api_version,
        schema=schema,
        now=now,
        subresource=subresource,
    )


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj["metadata"].get("managedFields", []))


def entry(
    obj: dict[str, Any], manager: str, operation: str = "Apply", subresource: str = ""
) -> dict[str, Any]:
    found = [
        e
        for e in entries(obj)
        if e["manager"] == manager and e["operation"] == operation and e.get("subresource", "") == subresource
    ]
    assert len(found) == 1, f"expected one {operation} entry for {manager}: {entries(obj)}"
    return found[0]


def has_entry(obj: dict[str, Any], manager: str) -> bool:
    return any(e["manager"] == manager for e in entries(obj))


def owns(
    obj: dict[str, Any], manager: str, *path: str, operation: str = "Apply", subresource: str = ""
) -> bool:
    node = entry(obj, manager, operation, subresource)["fieldsV1"]
    for pe in path:
        if pe not in node:
            return False
        node = node[pe]
    return node == {} or "." in node


def with_(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    parts = path.split(".")
    cur = out
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
    if value is _DELETE:
        del cur[parts[-1]]
    else:
        cur[parts[-1]] = value
    return out


_DELETE = object()
C = ("f:spec", "f:template", "f:spec", "f:containers")
WEB_KEY = 'k:{"name":"web"}'


# --- creation, FieldsV1 shape, no-op ------------------------------------------------------------


def test_01_apply_creates_with_exact_fieldsv1() -> None:
    cfg = deployment(
        [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}],
        labels={"app": "web"},
        replicas=2,
    )
    r = apply(None, cfg, "my-reconciler", now=T0)
    assert r.created and r.changed and r.write_needed
    [e] = entries(r.object)
    assert {k: e[k] for k in ("manager", "operation", "apiVersion", "time", "fieldsType")} == {
        "manager": "my-reconciler",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": T0,
        "fieldsType": "FieldsV1",
    }
    assert json.dumps(e["fieldsV1"], separators=(",", ":")) == (
        '{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:template":{"f:spec":'
        '{"f:containers":{"k:{\\"name\\":\\"web\\"}":{".":{},"f:image":{},"f:name":{},"f:ports":'
        '{"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},"f:containerPort":{}}}}}}}}}'
    )


def test_02_defaults_applied_but_not_owned() -> None:
    r = apply(None, BASE)
    spec = r.object["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    c = spec["template"]["spec"]["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log" and c["imagePullPolicy"] == "IfNotPresent"
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert not owns(r.object, "alice", "f:spec", "f:replicas")


def test_03_noop_apply_keeps_object_and_times() -> None:
    live = apply(None, BASE, now=T0).object
    r = apply(live, BASE, now=T3)
    assert not r.changed and not r.managed_fields_changed and not r.write_needed
    assert r.object == live


def test_04_changing_apply_updates_time() -> None:
    live = apply(None, BASE, now=T0).object
    r = apply(
        live, deployment([{"name": "web", "image": "nginx:1.26"}], selector=BASE["spec"]["selector"]), now=T3
    )
    assert r.changed and entry(r.object, "alice")["time"] == T3
    assert r.object["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"


# --- shared ownership and conflicts ---------------------------------------------------------------


def test_05_equal_values_share_ownership() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 2), now=T0).object
    r = apply(live, deployment(replicas=2), "bob")
    assert not r.changed and r.managed_fields_changed
    assert owns(r.object, "alice", "f:spec", "f:replicas") and owns(r.object, "bob", "f:spec", "f:replicas")


def test_06_conflict_with_applier_exact_message() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 2)).object
    with pytest.raises(ssa.ConflictError) as err:
        apply(live, deployment(replicas=3), "bob")
    e = err.value
    assert (e.code, e.reason) == (409, "Conflict")
    assert e.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    assert [(c.type, c.message, c.field) for c in e.causes] == [
        ("FieldManagerConflict", 'conflict with "alice"', ".spec.replicas")
    ]


def test_07_conflict_with_update_manager_names_api_version() -> None:
    live = apply(None, BASE).object
    live = update(live, with_(live, "spec.replicas", 5)).object
    with pytest.raises(ssa.ConflictError) as err:
        apply(live, with_(BASE, "spec.replicas", 2))
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas'
    )


def test_08_several_conflicts_with_one_manager() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 2)).object
    cfg = deployment([{"name": "web", "image": "nginx:2"}], replicas=3)
    with pytest.raises(ssa.ConflictError) as err:
        apply(live, cfg, "bob")
    assert err.value.message == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n- .spec.replicas\n'
        '- .spec.template.spec.containers[name="web"].image'
    )
    assert [c.field for c in err.value.conflicts] == [
        ".spec.replicas",
        '.spec.template.spec.containers[name="web"].image',
    ]


def test_09_conflicts_with_two_managers_sorted() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 2), "zed").object
    live = update(live, with_(live, "spec.minReadySeconds", 5), "alpha").object
    with pytest.raises(ssa.ConflictError) as err:
        apply(live, deployment(replicas=4, minReadySeconds=9), "bob")
    assert err.value.message == (
        'Apply failed with 2 conflicts: conflicts with "alpha" using apps/v1:\n- .spec.minReadySeconds\n'
        'conflicts with "zed":\n- .spec.replicas'
    )


def test_10_force_takes_ownership() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 2)).object
    r = apply(live, deployment(replicas=3), "bob", force=True)
    assert r.object["spec"]["replicas"] == 3
    assert owns(r.object, "bob", "f:spec", "f:replicas")
    assert not owns(r.object, "alice", "f:spec", "f:replicas")
    assert owns(r.object, "alice", *C, WEB_KEY, "f:image")


def test_11_force_drops_manager_left_empty() -> None:
    live = apply(None, deployment(replicas=2)).object
    live = apply(live, with_(BASE, "spec.replicas", 2), "bob").object
    r = apply(live, with_(BASE, "spec.replicas", 7), "bob", force=True)
    assert not has_entry(r.object, "alice")


def test_12_update_never_conflicts_and_takes_fields() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 2)).object
    r = update(live, with_(live, "spec.replicas", 9))
    assert r.object["spec"]["replicas"] == 9
    assert owns(r.object, "kubectl-edit", "f:spec", "f:replicas", operation="Update")
    assert not owns(r.object, "alice", "f:spec", "f:replicas")
    assert entry(r.object, "kubectl-edit", "Update")["apiVersion"] == "apps/v1"


def test_13_conflict_inside_list_map_item() -> None:
    live = apply(None, BASE).object
    with pytest.raises(ssa.ConflictError) as err:
        apply(live, deployment([{"name": "web", "image": "httpd"}]), "bob")
    assert err.value.conflicts[0].field == '.spec.template.spec.containers[name="web"].image'


# --- removal ------------------------------------------------------------------------------------


def test_14_field_omitted_on_reapply_is_removed() -> None:
    live = apply(None, with_(BASE, "metadata.labels", {"app": "web", "tier": "fe"})).object
    r = apply(live, with_(BASE, "metadata.labels", {"app": "web"}))
    assert r.object["metadata"]["labels"] == {"app": "web"}
    assert not owns(r.object, "alice", "f:metadata", "f:labels", "f:tier")


def test_15_omitted_field_shared_with_other_applier_stays() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 2)).object
    live = apply(live, deployment(replicas=2), "bob").object
    r = apply(live, BASE)
    assert r.object["spec"]["replicas"] == 2
    assert not owns(r.object, "alice", "f:spec", "f:replicas") and owns(
        r.object, "bob", "f:spec", "f:replicas"
    )


def test_16_two_appliers_share_then_both_leave() -> None:
    live = apply(None, with_(BASE, "spec.minReadySeconds", 3)).object
    live = apply(live, deployment(minReadySeconds=3), "bob").object
    live = apply(live, BASE).object
    assert live["spec"]["minReadySeconds"] == 3
    r = apply(live, deployment(paused=False), "bob")
    assert "minReadySeconds" not in r.object["spec"]


def test_17_omitted_field_owned_by_updater_stays() -> None:
    live = apply(None, with_(BASE, "spec.minReadySeconds", 3)).object
    live = update(live, with_(live, "spec.minReadySeconds", 4)).object
    r = apply(live, BASE)
    assert r.object["spec"]["minReadySeconds"] == 4


def test_18_omitted_field_with_default_is_reset_to_default() -> None:
    live = apply(None, with_(BASE, "spec.revisionHistoryLimit", 3)).object
    r = apply(live, BASE)
    assert r.object["spec"]["revisionHistoryLimit"] == 10


def test_19_removed_list_item_disappears() -> None:
    side = {"name": "side", "image": "busybox"}
    live = apply(None, deployment([WEB, side])).object
    r = apply(live, deployment([WEB]))
    assert [c["name"] for c in r.object["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert not owns(r.object, "alice", *C, 'k:{"name":"side"}')


def test_20_removed_list_item_kept_while_another_applier_owns_it() -> None:
    side = {"name": "side", "image": "busybox"}
    live = apply(None, deployment([WEB, side])).object
    live = apply(live, deployment([side]), "bob").object
    r = apply(live, deployment([WEB]))
    assert [c["name"] for c in r.object["spec"]["template"]["spec"]["containers"]] == ["web", "side"]


def test_21_update_removing_field_drops_it_from_every_manager() -> None:
    live = apply(None, with_(BASE, "metadata.labels", {"app": "web"})).object
    r = update(live, with_(live, "metadata.labels", _DELETE))
    assert "labels" not in r.object["metadata"]
    assert not owns(r.object, "alice", "f:metadata", "f:labels", "f:app")


# --- lists and maps -------------------------------------------------------------------------------


def test_22_list_map_items_merge_by_key_across_managers() -> None:
    live = apply(None, BASE).object
    r = apply(live, deployment([{"name": "side", "image": "busybox"}]), "bob")
    names = [c["name"] for c in r.object["spec"]["template"]["spec"]["containers"]]
    assert names == ["web", "side"]
    assert owns(r.object, "bob", *C, 'k:{"name":"side"}') and not owns(r.object, "bob", *C, WEB_KEY)


def test_23_list_map_merge_keeps_live_order_and_places_new_items() -> None:
    a, b, c = ({"name": n, "image": "i"} for n in "abc")
    live = apply(None, deployment([a, c])).object
    r = apply(live, deployment([a, b, c]))
    assert [x["name"] for x in r.object["spec"]["template"]["spec"]["containers"]] == ["a", "b", "c"]


def test_24_atomic_list_is_one_leaf_and_conflicts_whole() -> None:
    live = apply(None, deployment([{"name": "web", "image": "i", "command": ["a", "b"]}])).object
    assert owns(live, "alice", *C, WEB_KEY, "f:command")
    with pytest.raises(ssa.ConflictError) as err:
        apply(live, deployment([{"name": "web", "command": ["c"]}]), "bob")
    assert err.value.conflicts[0].field == '.spec.template.spec.containers[name="web"].command'
    r = apply(live, deployment([{"name": "web", "command": ["c"]}]), "bob", force=True)
    assert r.object["spec"]["template"]["spec"]["containers"][0]["command"] == ["c"]


def test_25_atomic_list_equal_value_is_shared() -> None:
    cfg = deployment([{"name": "web", "image": "i", "command": ["a"]}])
    live = apply(None, cfg).object
    r = apply(live, deployment([{"name": "web", "command": ["a"]}]), "bob")
    assert owns(r.object, "bob", *C, WEB_KEY, "f:command") and owns(
        r.object, "alice", *C, WEB_KEY, "f:command"
    )


def test_26_tolerations_are_atomic() -> None:
    cfg = with_(BASE, "spec.template.spec.tolerations", [{"key": "a", "operator": "Exists"}])
    live = apply(None, cfg).object
    with pytest.raises(ssa.ConflictError) as err:
        apply(
            live, deployment(template={"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}), "bob"
        )
    assert err.value.conflicts[0].field == ".spec.template.spec.tolerations"


def test_27_set_list_merges_members() -> None:
    live = apply(None, with_(BASE, "metadata.finalizers", ["a.io/x"])).object
    r = apply(live, with_(deployment(), "metadata.finalizers", ["b.io/y"]), "bob")
    assert r.object["metadata"]["finalizers"] == ["a.io/x", "b.io/y"]
    assert owns(r.object, "alice", "f:metadata", "f:finalizers", 'v:"a.io/x"')
    assert owns(r.object, "bob", "f:metadata", "f:finalizers", 'v:"b.io/y"')


def test_28_set_member_removed_when_applier_drops_it() -> None:
    live = apply(None, with_(BASE, "metadata.finalizers", ["a.io/x"])).object
    live = apply(live, with_(deployment(), "metadata.finalizers", ["b.io/y"]), "bob").object
    r = apply(live, BASE)
    assert r.object["metadata"]["finalizers"] == ["b.io/y"]


def test_29_granular_map_keys_owned_separately() -> None:
    live = apply(None, with_(BASE, "metadata.labels", {"a": "1"})).object
    r = apply(live, deployment(labels={"b": "2"}), "bob")
    assert r.object["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_30_atomic_map_conflicts_as_a_whole() -> None:
    live = apply(None, with_(BASE, "spec.template.spec.nodeSelector", {"a": "1"})).object
    assert owns(live, "alice", "f:spec", "f:template", "f:spec", "f:nodeSelector")
    with pytest.raises(ssa.ConflictError) as err:
        apply(live, deployment(template={"spec": {"nodeSelector": {"b": "2"}}}), "bob")
    assert err.value.conflicts[0].field == ".spec.template.spec.nodeSelector"


def test_31_atomic_struct_label_selector_is_a_leaf() -> None:
    live = apply(None, BASE).object
    assert entry(live, "alice")["fieldsV1"]["f:spec"]["f:selector"] == {}


def test_32_defaulted_key_matches_explicit_key() -> None:
    live = apply(None, deployment([{"name": "web", "ports": [{"containerPort": 80}]}])).object
    r = apply(
        live,
        deployment([{"name": "web", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}]),
        "bob",
    )
    ports = r.object["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert ports == [{"containerPort": 80, "protocol": "TCP", "name": "http"}]


def test_33_same_port_other_protocol_is_another_item() -> None:
    ports = [{"containerPort": 53}, {"containerPort": 53, "protocol": "UDP"}]
    r = apply(None, deployment([{"name": "dns", "ports": ports}]))
    got = r.object["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [(p["containerPort"], p["protocol"]) for p in got] == [(53, "TCP"), (53, "UDP")]
    fields = entry(r.object, "alice")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(fields['k:{"name":"dns"}']["f:ports"]) == [
        'k:{"containerPort":53,"protocol":"TCP"}',
        'k:{"containerPort":53,"protocol":"UDP"}',
    ]


def test_34_service_ports_keyed_by_port_and_protocol_with_defaults() -> None:
    cfg = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    r = apply(None, cfg, schema=SERVICE)
    spec = r.object["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert 'k:{"port":80,"protocol":"TCP"}' in entry(r.object, "alice")["fieldsV1"]["f:spec"]["f:ports"]


# --- bad input --------------------------------------------------------------------------------------


def test_35_duplicate_list_map_keys_rejected() -> None:
    with pytest.raises(ssa.InvalidObjectError) as err:
        apply(None, deployment([WEB, WEB]))
    assert err.value.message == (
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        '.spec.template.spec.containers: duplicate entries for key [name="web"]'
    )


def test_36_list_map_item_without_key_rejected() -> None:
    with pytest.raises(ssa.InvalidObjectError) as err:
        apply(None, deployment([{"image": "x"}]))
    assert err.value.message.endswith(
        ".spec.template.spec.containers: element 0: associative list with keys has an element that omits "
        'key field "name" (and doesn\'t have default value)'
    )


def test_37_managed_fields_in_apply_body_rejected() -> None:
    cfg = with_(BASE, "metadata.managedFields", [{"manager": "x"}])
    with pytest.raises(ssa.ApplyBodyError) as err:
        apply(None, cfg)
    assert (err.value.code, err.value.message) == (400, "metadata.managedFields must be nil")


def test_38_wrong_api_version_rejected() -> None:
    with pytest.raises(ssa.ApplyBodyError) as err:
        apply(None, with_(BASE, "apiVersion", "apps/v1beta1"))
    assert err.value.message == "invalid object type: apps/v1beta1, Kind=Deployment"
    with pytest.raises(ssa.ApplyBodyError) as err:
        apply(None, with_(BASE, "kind", "StatefulSet"))
    assert err.value.message == "invalid object type: apps/v1, Kind=StatefulSet"


def test_39_undeclared_field_rejected() -> None:
    with pytest.raises(ssa.InvalidObjectError) as err:
        apply(None, with_(BASE, "spec.replica", 2))
    assert err.value.message.endswith(".spec.replica: field not declared in schema")


def test_40_wrong_type_rejected_with_field() -> None:
    with pytest.raises(ssa.InvalidObjectError) as err:
        apply(None, with_(BASE, "spec.replicas", "two"))
    assert ".spec.replicas: expected numeric" in err.value.message
    assert err.value.causes[0].field == "spec.replicas"


# --- managedFields bookkeeping ---------------------------------------------------------------------


def test_41_update_without_change_records_nothing() -> None:
    live = apply(None, BASE).object
    r = update(live, live, "kubectl-edit")
    assert not r.changed and not r.managed_fields_changed and not has_entry(r.object, "kubectl-edit")


def test_42_update_entries_per_api_version_apply_entry_single() -> None:
    live = apply(None, BASE).object
    live = update(live, with_(live, "spec.replicas", 2), "ctl", api_version="apps/v1").object
    live = update(live, with_(live, "spec.minReadySeconds", 3), "ctl", api_version="apps/v1beta2").object
    assert [e["apiVersion"] for e in entries(live) if e["manager"] == "ctl"] == ["apps/v1", "apps/v1beta2"]
    # the same field written again at another version moves to that version's entry
    live = update(live, with_(live, "spec.replicas", 4), "ctl", api_version="apps/v1beta2").object
    assert [e["apiVersion"] for e in entries(live) if e["manager"] == "ctl"] == ["apps/v1beta2"]
    live = apply(live, deployment(paused=True), "ap1").object
    live = apply(live, deployment(paused=True), "ap1").object
    assert [e["apiVersion"] for e in entries(live) if e["manager"] == "ap1"] == ["apps/v1"]


def test_43_entries_ordered_apply_first_then_time() -> None:
    live = update(None, BASE, "creator", now=T0).object
    live = apply(live, deployment(paused=True), "zz", now=T1).object
    live = apply(live, deployment(minReadySeconds=1), "aa", now=T2).object
    assert [(e["operation"], e["manager"]) for e in entries(live)] == [
        ("Apply", "zz"),
        ("Apply", "aa"),
        ("Update", "creator"),
    ]


def test_44_status_update_is_a_separate_entry_and_main_apply_ignores_status() -> None:
    live = apply(None, BASE, "ctl").object
    live = update(live, with_(live, "status", {"replicas": 1}), "ctl", subresource="status").object
    st = entry(live, "ctl", "Update", subresource="status")
    assert st["fieldsV1"] == {"f:status": {"f:replicas": {}}}
    r = apply(live, with_(BASE, "status", {"replicas": 5}), "ctl")
    assert r.object["status"] == {"replicas": 1}
    assert "f:status" not in entry(r.object, "ctl")["fieldsV1"]


def test_45_status_subresource_apply_owns_only_status() -> None:
    live = apply(None, BASE).object
    cfg = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 9},
        "status": {"replicas": 2},
    }
    r = apply(live, cfg, "ctl", subresource="status")
    assert r.object["status"] == {"replicas": 2} and r.object["spec"]["replicas"] == 1
    assert entry(r.object, "ctl", subresource="status")["fieldsV1"] == {"f:status": {"f:replicas": {}}}


def test_46_main_update_does_not_touch_status() -> None:
    live = apply(None, BASE).object
    live = update(live, with_(live, "status", {"replicas": 1}), "ctl", subresource="status").object
    r = update(live, with_(with_(live, "status", {"replicas": 7}), "spec.replicas", 3), "edit")
    assert r.object["status"] == {"replicas": 1} and r.object["spec"]["replicas"] == 3


def test_47_reset_managed_fields_with_empty_entry() -> None:
    live = apply(None, BASE).object
    new = with_(live, "metadata.managedFields", [{}])
    r = update(live, new)
    assert "managedFields" not in r.object["metadata"] and r.managed_fields_changed


def test_48_create_by_update_matches_kubectl_create_shape() -> None:
    cfg = deployment(
        [{"name": "nginx", "image": "nginx"}],
        labels={"app": "nginx"},
        replicas=1,
        selector={"matchLabels": {"app": "nginx"}},
        template={
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
        },
    )
    r = update(None, cfg, "kubectl-create", now=T0)
    f = entry(r.object, "kubectl-create", "Update")["fieldsV1"]
    assert f["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    spec = f["f:spec"]
    assert "." not in spec and spec["f:selector"] == {} and spec["f:replicas"] == {}
    assert spec["f:strategy"] == {
        "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
        "f:type": {},
    }
    pod = spec["f:template"]["f:spec"]
    assert "." not in pod["f:containers"]
    assert pod["f:containers"]['k:{"name":"nginx"}'] == {
        ".": {},
        "f:image": {},
        "f:imagePullPolicy": {},
        "f:name": {},
        "f:resources": {},
        "f:terminationMessagePath": {},
        "f:terminationMessagePolicy": {},
    }
    assert pod["f:securityContext"] == {} and pod["f:dnsPolicy"] == {}


def test_49_new_manager_sharing_values_changes_only_managed_fields() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 3), now=T0).object
    r = apply(live, deployment(replicas=3), "bob", now=T2)
    assert not r.changed and r.write_needed
    assert entry(r.object, "alice")["time"] == T0
    assert "time" not in entry(r.object, "bob")  # upstream sets time only when the object changed


def test_50_apply_after_force_by_update_owner_keeps_other_fields() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 2)).object
    live = update(live, with_(live, "spec.replicas", 3)).object
    r = apply(live, with_(BASE, "spec.replicas", 4), force=True)
    assert r.object["spec"]["replicas"] == 4 and not has_entry(r.object, "kubectl-edit")


def test_51_status_apply_keeps_main_manager_times() -> None:
    live = apply(None, BASE, now=T0).object
    r = apply(
        live,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "status": {"replicas": 1},
        },
        "ctl",
        subresource="status",
        now=T3,
    )
    assert entry(r.object, "alice")["time"] == T0


def test_52_item_missing_key_with_default_is_keyed_by_default() -> None:
    r = apply(None, deployment([{"name": "web", "ports": [{"containerPort": 8080}]}]))
    fields = entry(r.object, "alice")["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert 'k:{"containerPort":8080,"protocol":"TCP"}' in fields[WEB_KEY]["f:ports"]
    assert "f:protocol" not in fields[WEB_KEY]["f:ports"]['k:{"containerPort":8080,"protocol":"TCP"}']


def test_53_more_than_ten_updaters_fold_into_ancient_changes() -> None:
    live = apply(None, BASE, now=T0).object
    for i in range(12):
        live = update(
            live,
            with_(live, "metadata.annotations", {**live["metadata"].get("annotations", {}), f"a{i}": "x"}),
            f"m{i:02d}",
            now=f"2026-01-01T01:{i:02d}:00Z",
        ).object
    updaters = [e["manager"] for e in entries(live) if e["operation"] == "Update"]
    assert len(updaters) == 10 and "ancient-changes" in updaters
    ancient = entry(live, "ancient-changes", "Update")["fieldsV1"]["f:metadata"]["f:annotations"]
    assert set(ancient) == {".", "f:a0", "f:a1", "f:a2"}  # m00 created the map
    assert not {"m00", "m01", "m02"} & set(updaters)


def test_54_secret_string_data_folds_into_data() -> None:
    secret = schema_for("v1", "Secret")
    assert secret is not None
    cfg = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "stringData": {"password": "hunter2"},
    }
    r = apply(None, cfg, schema=secret)
    assert r.object["data"] == {"password": "aHVudGVyMg=="} and "stringData" not in r.object
    assert r.object["type"] == "Opaque"
    assert entry(r.object, "alice")["fieldsV1"] == {"f:stringData": {"f:password": {}}}


def test_55_atomic_struct_with_defaulted_field_bumps_time_not_content() -> None:
    env = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    cfg = deployment([{"name": "web", "image": "i", "env": env}])
    live = apply(None, cfg, now=T0).object
    ref = live["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]
    assert ref == {"fieldPath": "metadata.name", "apiVersion": "v1"}
    r = apply(live, cfg, now=T3)
    # the merged fieldRef (atomic) differs from the defaulted live one, as upstream: content equal,
    # manager time bumped
    assert not r.changed and r.managed_fields_changed and entry(r.object, "alice")["time"] == T3


def test_56_quantities_accept_numbers_and_strings() -> None:
    res = {"limits": {"cpu": 1, "memory": "131072Ki"}, "requests": {"cpu": 0.5}}
    cfg = deployment([{"name": "web", "image": "i", "resources": res}])
    live = apply(None, cfg, now=T0).object
    # stored in canonical form, as the API server does
    assert live["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "1", "memory": "128Mi"},
        "requests": {"cpu": "500m"},
    }
    # and, as upstream, re-applying the non-canonical spelling counts as a change of the manager's time
    r = apply(live, cfg, now=T3)
    assert not r.changed and entry(r.object, "alice")["time"] == T3
    with pytest.raises(ssa.InvalidObjectError):
        apply(None, deployment([{"name": "web", "image": 5}]))


def client_side_applied(cfg: dict[str, Any]) -> dict[str, Any]:
    """What `kubectl apply` (client-side) leaves: an Update entry and the last-applied annotation."""
    obj = with_(
        cfg,
        "metadata.annotations",
        {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(cfg, sort_keys=True) + "\n"},
    )
    return update(None, obj, "kubectl-client-side-apply", now=T0).object


def test_57_kubectl_server_side_upgrade_takes_over_last_applied_fields() -> None:
    live = client_side_applied(with_(BASE, "spec.replicas", 2))
    r = apply(live, with_(BASE, "spec.replicas", 3), "kubectl")
    assert r.object["spec"]["replicas"] == 3
    assert owns(r.object, "kubectl", "f:spec", "f:replicas")
    last = json.loads(r.object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3


def test_58_last_applied_upgrade_only_for_kubectl_and_unchanged_fields() -> None:
    live = client_side_applied(with_(BASE, "spec.replicas", 2))
    with pytest.raises(ssa.ConflictError):
        apply(live, with_(BASE, "spec.replicas", 3), "spindle")
    drifted = update(live, with_(live, "spec.replicas", 5), "kubectl-client-side-apply").object
    with pytest.raises(ssa.ConflictError) as err:
        apply(drifted, with_(BASE, "spec.replicas", 3), "kubectl")
    assert [c.field for c in err.value.conflicts] == [".spec.replicas"]


# --- robustness: the engine answers every body with a result or an SSAError, never a crash ----------

_ODD_VALUES: list[Any] = [
    None,
    0,
    -1,
    2.5,
    True,
    "",
    "x",
    [],
    [1, "a"],
    {},
    {"a": {"b": []}},
    [{}],
    [None],
    [{"name": 1}],
    [{"name": "web"}, {"name": "web"}],
]


def _paths(v: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(v, dict):
        for k, x in v.items():
            out += _paths(x, (*prefix, k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _paths(x, (*prefix, i))
    return out


def _mutate(obj: dict[str, Any], rnd: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    path = rnd.choice(_paths(out)[1:])
    cur: Any = out
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = copy.deepcopy(rnd.choice(_ODD_VALUES))
    return out


def test_59_mutated_bodies_never_crash_the_engine() -> None:
    import random

    rnd = random.Random(1234)
    full = deployment(
        [
            {
                "name": "web",
                "image": "i",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "A", "value": "1"}],
                "resources": {"limits": {"cpu": "1"}},
                "command": ["x"],
            }
        ],
        labels={"app": "web"},
        replicas=2,
        selector={"matchLabels": {"app": "web"}},
    )
    live = apply(None, full).object
    outcomes = {"ok": 0, "rejected": 0}
    for _ in range(400):
        body = _mutate(full, rnd)
        for op in ("apply-create", "apply", "update", "smp"):
            try:
                if op == "apply-create":
                    apply(None, body, "fuzz", force=True)
                elif op == "apply":
                    apply(live, body, "fuzz", force=rnd.random() < 0.5)
                elif op == "update":
                    update(live, {**body, "metadata": live["metadata"]}, "fuzz")
                else:
                    ssa.apply_strategic_merge_patch(live, body, DEPLOY)
            except ssa.SSAError as exc:  # a clear error, never a crash
                assert str(exc), (op, body)
                outcomes["rejected"] += 1
            else:
                outcomes["ok"] += 1
    # The mutations reach both paths: some bodies are accepted, some rejected with an error.
    assert outcomes["ok"] and outcomes["rejected"], outcomes


def test_60_create_service_by_update_matches_kubectl_create_shape() -> None:
    cfg = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default", "labels": {"app": "s"}},
        "spec": {"selector": {"app": "s"}, "ports": [{"name": "80-8080", "port": 80, "targetPort": 8080}]},
    }
    r = update(None, cfg, "kubectl-create", schema=SERVICE)
    f = entry(r.object, "kubectl-create", "Update")["fieldsV1"]
    assert f == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:internalTrafficPolicy": {},
            "f:ports": {
                ".": {},
                'k:{"port":80,"protocol":"TCP"}': {
                    ".": {},
                    "f:name": {},
                    "f:port": {},
                    "f:protocol": {},
                    "f:targetPort": {},
                },
            },
            "f:selector": {},
            "f:sessionAffinity": {},
            "f:type": {},
        },
    }


def test_61_builtin_objects_lose_null_and_empty_optional_values_like_go() -> None:
    cfg = with_(
        with_(BASE, "metadata.labels", {}),
        "spec.template.spec.containers",
        [{"name": "web", "image": "i", "args": [], "env": [], "workingDir": None, "securityContext": {}}],
    )
    r = apply(None, cfg)
    assert "labels" not in r.object["metadata"]
    c = r.object["spec"]["template"]["spec"]["containers"][0]
    assert "args" not in c and "env" not in c and "workingDir" not in c and c["securityContext"] == {}
    assert r.object["spec"]["template"]["spec"]["containers"] != []


def test_62_null_in_apply_config_resets_scalars_but_not_granular_maps() -> None:
    live = apply(None, with_(BASE, "spec.replicas", 3)).object
    live = update(live, with_(live, "metadata.labels", {"a": "1"}), "labeller").object
    r = apply(live, with_(with_(BASE, "metadata.labels", None), "spec.replicas", None))
    assert r.object["metadata"]["labels"] == {"a": "1"}  # granular map: null keeps live content
    assert r.object["spec"]["replicas"] == 1  # scalar: null clears, defaulting fills it again


def test_63_untracked_object_first_apply_conflicts_with_before_first_apply() -> None:
    live = update(None, with_(BASE, "spec.replicas", 2), "creator").object
    untracked = with_(live, "metadata.managedFields", _DELETE)
    with pytest.raises(ssa.ConflictError) as err:
        apply(untracked, with_(BASE, "spec.replicas", 5))
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas'
    )
    r = apply(untracked, with_(BASE, "spec.replicas", 2))  # equal values: shared, no conflict
    assert owns(r.object, "before-first-apply", "f:spec", "f:replicas", operation="Update")


def test_64_update_of_untracked_object_stays_untracked() -> None:
    live = with_(update(None, BASE, "creator").object, "metadata.managedFields", _DELETE)
    r = update(live, with_(live, "spec.replicas", 4))
    assert r.changed and "managedFields" not in r.object["metadata"]


def test_65_create_ignores_status_of_kinds_with_status_subresource() -> None:
    r = update(None, with_(BASE, "status", {"replicas": 3}), "kubectl-create")
    assert r.object["status"] == {}
    assert "f:status" not in entry(r.object, "kubectl-create", "Update")["fieldsV1"]
