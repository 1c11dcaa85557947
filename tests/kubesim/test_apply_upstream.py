"""kubernetes' server-side-apply integration tests, ported to a running kubesim.

Source: kubernetes/kubernetes ``test/integration/apiserver/apply/`` — ``apply_test.go``,
``apply_crd_test.go``, ``status_test.go``, ``scale_test.go``. Each test names the Go test it ports;
where a kind kubesim does not serve stands in for the original (StatefulSet, ValidatingWebhook-
Configuration, PersistentVolume, DaemonSet), the stand-in is named. Cases not ported are listed in
`kubesim`'s known gaps.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from kubesim_fixtures import Raw, crd_manifest, deployment

from kubesim.bodies import APPLY, JSON_PATCH, MERGE, STRATEGIC

PODS = "/api/v1/namespaces/default/pods"
SERVICES = "/api/v1/namespaces/default/services"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def apply(
    raw: Raw,
    url: str,
    body: Any,
    manager: str | None = "apply_test",
    *,
    force: bool = False,
) -> tuple[int, Any]:
    query = []
    if manager is not None:
        query.append(f"fieldManager={manager}")
    if force:
        query.append("force=true")
    text = body if isinstance(body, str) else json.dumps(body)
    return raw.request("PATCH", url + ("?" + "&".join(query) if query else ""), text, APPLY)


def ok(result: tuple[int, Any], *codes: int) -> Any:
    code, body = result
    assert code in (codes or (200, 201)), body
    return body


def pod(name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **meta},
        "spec": {"containers": [{"name": "test-container", "image": "test-image"}]},
    }


def configmap(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"test-label": "test"}},
        "data": {"key": "value"},
        **extra,
    }


def managers(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (e["manager"], e["operation"], e.get("subresource", ""))
        for e in obj["metadata"].get("managedFields") or []
    ]


def fields_of(obj: dict[str, Any], manager: str, operation: str = "Apply", subresource: str = "") -> Any:
    [entry] = [
        e
        for e in obj["metadata"].get("managedFields") or []
        if (e["manager"], e["operation"], e.get("subresource", "")) == (manager, operation, subresource)
    ]
    return entry["fieldsV1"]


# --- apply_test.go -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (PODS, pod("test-pod")),
        (
            SERVICES,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "test-svc"},
                "spec": {"ports": [{"port": 8080, "protocol": "UDP"}]},
            },
        ),
    ],
)
def test_apply_also_creates(raw: Raw, url: str, body: dict[str, Any]) -> None:
    """TestApplyAlsoCreates: apply creates; another manager re-applying the same body has no conflict."""
    name = body["metadata"]["name"]
    assert raw.request("PATCH", f"{url}/{name}?fieldManager=apply_test", json.dumps(body), APPLY)[0] == 201
    ok(raw.request("GET", f"{url}/{name}"))
    ok(apply(raw, f"{url}/{name}", body, "apply_test_2"), 200)


def test_noop_update_same_resource_version(raw: Raw) -> None:
    """TestNoOpUpdateSameResourceVersion: a PUT of the object as read changes nothing."""
    body = pod("no-op", labels={"a": "one", "c": "two", "b": "three"})
    body["spec"]["containers"] = [{"name": f"test-container-{x}", "image": f"test-image-{x}"} for x in "acb"]
    ok(apply(raw, f"{PODS}/no-op", body))
    time.sleep(1)
    created = ok(raw.request("GET", f"{PODS}/no-op"))
    ok(raw.request("PUT", f"{PODS}/no-op", created))
    assert ok(raw.request("GET", f"{PODS}/no-op")) == created


def test_noop_apply_with_empty_map(raw: Raw) -> None:
    """TestNoOpApplyWithEmptyMap: re-applying a body with `annotations: {}` writes nothing."""
    body = deployment("no-op-empty-map", replicas=1)
    body["spec"]["template"]["metadata"]["annotations"] = {}
    ok(apply(raw, f"{DEPLOYMENTS}/no-op-empty-map", body))
    time.sleep(1)
    created = ok(raw.request("GET", f"{DEPLOYMENTS}/no-op-empty-map"))
    ok(apply(raw, f"{DEPLOYMENTS}/no-op-empty-map", body))
    assert ok(raw.request("GET", f"{DEPLOYMENTS}/no-op-empty-map")) == created


def test_apply_empty_marker_struct_different_from_nil(raw: Raw) -> None:
    """TestApplyEmptyMarkerStructDifferentFromNil: `emptyDir: {}` is owned, so dropping it is a change."""
    body = pod("pod-with-empty-dir")
    body["spec"]["containers"][0]["volumeMounts"] = [{"mountPath": "/cache", "name": "cache-volume"}]
    body["spec"]["volumes"] = [{"name": "cache-volume", "emptyDir": {}}]
    created = ok(apply(raw, f"{PODS}/pod-with-empty-dir", body))
    owned = fields_of(created, "apply_test")["f:spec"]["f:volumes"]['k:{"name":"cache-volume"}']
    assert owned == {".": {}, "f:emptyDir": {}, "f:name": {}}
    time.sleep(1)
    del body["spec"]["volumes"][0]["emptyDir"]
    updated = ok(apply(raw, f"{PODS}/pod-with-empty-dir", body))
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    # defaulting puts `emptyDir: {}` back (SetDefaults_Volume), but nobody owns it now
    assert updated["spec"]["volumes"][0] == {"name": "cache-volume", "emptyDir": {}}
    assert (
        "f:emptyDir"
        not in fields_of(updated, "apply_test")["f:spec"]["f:volumes"]['k:{"name":"cache-volume"}']
    )


def test_noop_change_creation_time(raw: Raw) -> None:
    """TestNoopChangeCreationTime: null creationTimestamp/resourceVersion in the body; a second apply
    answers the very same object."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "myconfig", "creationTimestamp": None, "resourceVersion": None},
        "data": {"key": "value"},
    }
    first = ok(apply(raw, f"{CONFIGMAPS}/myconfig", body))
    time.sleep(1.2)
    assert ok(apply(raw, f"{CONFIGMAPS}/myconfig", body)) == first


def _normalized_deployment(name: str) -> dict[str, Any]:
    body = deployment(name, replicas=1)
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "2048Mi"}}
    return body


def test_no_semantic_update_apply_same_resource_version(raw: Raw) -> None:
    """TestNoSemanticUpdateApplySameResourceVersion (a Deployment for the StatefulSet): a quantity the
    server normalizes (2048Mi -> 2Gi) re-applied is no change."""
    body = _normalized_deployment("nginx-apply")
    first = ok(apply(raw, f"{DEPLOYMENTS}/nginx-apply", body))
    time.sleep(1.2)
    again = ok(apply(raw, f"{DEPLOYMENTS}/nginx-apply", body))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_no_semantic_update_put_same_resource_version(raw: Raw) -> None:
    """TestNoSemanticUpdatePutSameResourceVersion (Deployment for StatefulSet): POST, then PUT of the
    same body is no change."""
    body = _normalized_deployment("nginx-put")
    first = ok(raw.request("POST", f"{DEPLOYMENTS}?fieldManager=apply_test", body))
    time.sleep(1.2)
    again = ok(raw.request("PUT", f"{DEPLOYMENTS}/nginx-put?fieldManager=apply_test", body))
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_create_on_apply_fails_with_uid(raw: Raw) -> None:
    """TestCreateOnApplyFailsWithUID: an apply that would create, naming a uid, is a 409."""
    code, body = apply(
        raw, f"{PODS}/test-pod-uid", pod("test-pod-uid", uid="88e00824-7f0e-11e8-94a1-c8d3ffb15800")
    )
    assert code == 409 and body["reason"] == "Conflict", body
    assert raw.request("GET", f"{PODS}/test-pod-uid")[0] == 404


def test_apply_update_apply_conflict_forced(raw: Raw) -> None:
    """TestApplyUpdateApplyConflictForced."""
    body = deployment("conflict-forced", replicas=3)
    ok(apply(raw, f"{DEPLOYMENTS}/conflict-forced", body))
    ok(raw.request("PATCH", f"{DEPLOYMENTS}/conflict-forced", '{"spec":{"replicas": 5}}', MERGE))
    code, status = apply(raw, f"{DEPLOYMENTS}/conflict-forced", body)
    assert code == 409 and len(status["details"]["causes"]) >= 1
    ok(apply(raw, f"{DEPLOYMENTS}/conflict-forced", body, force=True))


def test_apply_groups_many_separate_updates(raw: Raw) -> None:
    """TestApplyGroupsManySeparateUpdates (a ClusterRole for the ValidatingWebhookConfiguration):
    20 updaters leave 10 Update entries (the oldest in `ancient-changes`) after the applier's."""
    url = "/apis/rbac.authorization.k8s.io/v1/clusterroles/webhook"
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "webhook", "labels": {"applier": "true"}},
    }
    obj = ok(apply(raw, url, body))
    for i in range(20):
        patch = json.dumps({"metadata": {"labels": {f"updater{i}": "new"}}})
        obj = ok(raw.request("PATCH", f"{url}?fieldManager=updater{i}", patch, MERGE))
    entries = obj["metadata"]["managedFields"]
    assert len(entries) == 11
    assert entries[0]["manager"] == "apply_test" and entries[1]["manager"] == "ancient-changes"


def test_apply_managed_fields(raw: Raw) -> None:
    """TestApplyManagedFields: the exact managedFields after an apply and two updates by one manager
    (grouped into one entry carrying the latest time)."""
    ok(apply(raw, f"{CONFIGMAPS}/test-cm-mf", configmap("test-cm-mf")))
    ok(
        raw.request(
            "PATCH", f"{CONFIGMAPS}/test-cm-mf?fieldManager=updater", '{"data":{"new-key": "value"}}', MERGE
        )
    )
    time.sleep(1)
    ok(
        raw.request(
            "PATCH", f"{CONFIGMAPS}/test-cm-mf?fieldManager=updater", '{"data":{"key": "new value"}}', MERGE
        )
    )
    obj = ok(raw.request("GET", f"{CONFIGMAPS}/test-cm-mf"))
    first, second = obj["metadata"]["managedFields"]  # (key order is Go's there; JSON objects have none)
    assert first == {
        "manager": "apply_test",
        "operation": "Apply",
        "apiVersion": "v1",
        "time": first["time"],
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:test-label": {}}}},
    }
    assert second == {
        "manager": "updater",
        "operation": "Update",
        "apiVersion": "v1",
        "time": second["time"],
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:key": {}, "f:new-key": {}}},
    }
    assert first["time"] != second["time"]
    assert obj["data"] == {"key": "new value", "new-key": "value"}


def test_apply_removes_empty_managed_fields(raw: Raw) -> None:
    """TestApplyRemovesEmptyManagedFields: an apply that owns nothing leaves no entry."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "test-cm-empty", "namespace": "default"},
    }
    ok(apply(raw, f"{CONFIGMAPS}/test-cm-empty", body))
    ok(apply(raw, f"{CONFIGMAPS}/test-cm-empty", body))
    assert "managedFields" not in ok(raw.request("GET", f"{CONFIGMAPS}/test-cm-empty"))["metadata"]


def test_apply_requires_field_manager(raw: Raw) -> None:
    """TestApplyRequiresFieldManager."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "test-cm-fm", "namespace": "default"},
    }
    assert apply(raw, f"{CONFIGMAPS}/test-cm-fm", body, None)[0] == 422
    ok(apply(raw, f"{CONFIGMAPS}/test-cm-fm", body), 201)


def test_apply_remove_container_port(raw: Raw) -> None:
    """TestApplyRemoveContainerPort."""
    body = deployment("remove-port", replicas=3)
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "protocol": "TCP"}]
    ok(apply(raw, f"{DEPLOYMENTS}/remove-port", body))
    del body["spec"]["template"]["spec"]["containers"][0]["ports"]
    ok(apply(raw, f"{DEPLOYMENTS}/remove-port", body))
    got = ok(raw.request("GET", f"{DEPLOYMENTS}/remove-port"))
    assert "ports" not in got["spec"]["template"]["spec"]["containers"][0]


def test_apply_fails_with_version_mismatch(raw: Raw) -> None:
    """TestApplyFailsWithVersionMismatch: the body's apiVersion is not the URL's: 400."""
    body = deployment("version-mismatch", replicas=3)
    ok(apply(raw, f"{DEPLOYMENTS}/version-mismatch", body))
    body["apiVersion"] = "extensions/v1beta"
    assert apply(raw, f"{DEPLOYMENTS}/version-mismatch", body)[0] == 400


def test_apply_converts_managed_fields_version(raw: Raw) -> None:
    """TestApplyConvertsManagedFieldsVersion: an applier's entry given at create in another version is
    the same applier; its next apply replaces it with the URL's version and its new set."""
    body = deployment("convert-mf", replicas=1)
    del body["spec"]["replicas"]
    body["metadata"]["managedFields"] = [
        {
            "manager": "sidecar_controller",
            "operation": "Apply",
            "apiVersion": "extensions/v1beta1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:sidecar_version": {}}},
                "f:spec": {
                    "f:template": {
                        "f: spec": {"f:containers": {'k:{"name":"sidecar"}': {".": {}, "f:image": {}}}}
                    }
                },
            },
        }
    ]
    ok(raw.request("POST", DEPLOYMENTS, body), 201)
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "convert-mf", "labels": {"sidecar_version": "release"}},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "sidecar:latest"}]}}},
    }
    ok(apply(raw, f"{DEPLOYMENTS}/convert-mf", sidecar, "sidecar_controller"))
    entries = ok(raw.request("GET", f"{DEPLOYMENTS}/convert-mf"))["metadata"]["managedFields"]
    assert len(entries) == 2
    [entry] = [e for e in entries if e["manager"] == "sidecar_controller" and e["apiVersion"] == "apps/v1"]
    assert json.dumps(entry["fieldsV1"], separators=(",", ":")) == (
        '{"f:metadata":{"f:labels":{"f:sidecar_version":{}}},"f:spec":{"f:template":{"f:spec":{"f:containers":'
        '{"k:{\\"name\\":\\"sidecar\\"}":{".":{},"f:image":{},"f:name":{}}}}}}}'
    )


@pytest.mark.parametrize(
    ("how", "name"),
    [
        ("merge", "clear-mf-merge"),
        ("strategic", "clear-mf-smp"),
        ("json", "clear-mf-json"),
        ("put", "clear-mf-put"),
    ],
)
def test_clear_managed_fields(raw: Raw, how: str, name: str) -> None:
    """TestClearManagedFieldsWith{MergePatch,StrategicMergePatch,JSONPatch,Update}: `[{}]` clears the
    entries, the rest of the object stays."""
    url = f"{CONFIGMAPS}/{name}"
    ok(apply(raw, url, configmap(name)))
    if how == "merge":
        ok(raw.request("PATCH", url, '{"metadata":{"managedFields": [{}]}}', MERGE))
    elif how == "strategic":
        ok(raw.request("PATCH", url, '{"metadata":{"managedFields": [{}]}}', STRATEGIC))
    elif how == "json":
        ok(
            raw.request(
                "PATCH",
                url,
                '[{"op": "replace", "path": "/metadata/managedFields", "value": [{}]}]',
                JSON_PATCH,
            )
        )
    else:
        body = configmap(name)
        body["metadata"]["managedFields"] = [{}]
        ok(raw.request("PUT", url, body))
    obj = ok(raw.request("GET", url))
    assert "managedFields" not in obj["metadata"]
    assert obj["metadata"]["labels"] == {"test-label": "test"}


@pytest.mark.parametrize("how", ["create", "put", "json"])
def test_errors_dont_fail(raw: Raw, how: str) -> None:
    """TestErrorsDontFail / TestErrorsDontFailUpdate / TestErrorsDontFailPatch: an entry with an empty
    fieldsType does not fail the write."""
    name = f"errors-dont-fail-{how}"
    bad = [
        {
            "manager": "apply_test",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": "2019-07-08T09:31:18Z",
            "fieldsType": "",
            "fieldsV1": {},
        }
    ]
    body = configmap(name)
    url = f"{CONFIGMAPS}?fieldManager=apply_test"
    if how == "create":
        body["metadata"]["managedFields"] = bad
        ok(raw.request("POST", url, body), 201)
        return
    ok(raw.request("POST", url, body), 201)
    if how == "put":
        body["metadata"]["managedFields"] = bad
        ok(raw.request("PUT", f"{CONFIGMAPS}/{name}?fieldManager=apply_test", body), 200)
    else:
        patch = json.dumps([{"op": "replace", "path": "/metadata/managedFields", "value": bad}])
        ok(raw.request("PATCH", f"{CONFIGMAPS}/{name}?fieldManager=apply_test", patch, JSON_PATCH), 200)


def test_apply_does_not_change_managed_fields_via_subresources(raw: Raw) -> None:
    """TestApplyDoesNotChangeManagedFieldsViaSubresources: managedFields in a status patch are ignored."""
    live = ok(apply(raw, f"{PODS}/just-a-pod-sub", pod("just-a-pod-sub")))
    update = {
        "metadata": {
            "managedFields": [
                {
                    "manager": "testing",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:spec": {
                            "f:containers": {'k:{"name":"testing"}': {".": {}, "f:image": {}, "f:name": {}}}
                        }
                    },
                }
            ]
        },
        "status": {"conditions": [{"type": "MyStatus", "status": "true"}]},
    }
    new = ok(
        raw.request(
            "PATCH",
            f"{PODS}/just-a-pod-sub/status?fieldManager=update_managedfields_test",
            json.dumps(update),
            MERGE,
        )
    )
    assert len(live["metadata"]["managedFields"]) == 1
    assert len(new["metadata"]["managedFields"]) == 2
    assert new["metadata"]["managedFields"][0] == live["metadata"]["managedFields"][0]
    assert new["metadata"]["managedFields"][1]["manager"] == "update_managedfields_test"


def test_clear_managed_fields_with_update_empty_list(raw: Raw) -> None:
    """TestClearManagedFieldsWithUpdateEmptyList: `managedFields: []` on a PUT clears the entries and
    the object stays untracked through the next update."""
    url = f"{CONFIGMAPS}/clear-mf-empty-list"
    ok(apply(raw, url, configmap("clear-mf-empty-list")))
    body = configmap("clear-mf-empty-list")
    body["metadata"]["managedFields"] = []
    ok(raw.request("PUT", url, body))
    ok(raw.request("PATCH", url, '{"metadata":{"labels": { "test-label": "v1" }}}', MERGE))
    obj = ok(raw.request("GET", url))
    assert "managedFields" not in obj["metadata"]
    assert obj["metadata"]["labels"] == {"test-label": "v1"}


def _hostname_deployment(name: str, **spec: Any) -> dict[str, Any]:
    body = deployment(name, replicas=3)
    body["spec"]["template"]["spec"]["hostname"] = "test-hostname"
    body["spec"].update(spec)
    return body


def _without_replicas_and_hostname(body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    del out["spec"]["replicas"]
    del out["spec"]["template"]["spec"]["hostname"]
    return out


def test_apply_unset_exclusively_owned_fields(raw: Raw) -> None:
    """TestApplyUnsetExclusivelyOwnedFields: dropped fields go; a defaulted one comes back defaulted."""
    body = _hostname_deployment("deployment-exclusive-unset")
    ok(apply(raw, f"{DEPLOYMENTS}/deployment-exclusive-unset", body))
    got = ok(apply(raw, f"{DEPLOYMENTS}/deployment-exclusive-unset", _without_replicas_and_hostname(body)))
    assert got["spec"]["replicas"] == 1
    assert "hostname" not in got["spec"]["template"]["spec"]


def test_apply_unset_shared_fields(raw: Raw) -> None:
    """TestApplyUnsetSharedFields: fields another applier still owns stay."""
    body = _hostname_deployment("deployment-shared-unset")
    for manager in ("shared_owner_1", "shared_owner_2"):
        ok(apply(raw, f"{DEPLOYMENTS}/deployment-shared-unset", body, manager))
    got = ok(
        apply(
            raw,
            f"{DEPLOYMENTS}/deployment-shared-unset",
            _without_replicas_and_hostname(body),
            "shared_owner_1",
        )
    )
    assert got["spec"]["replicas"] == 3
    assert got["spec"]["template"]["spec"]["hostname"] == "test-hostname"


def test_apply_can_transfer_field_ownership_to_controller(raw: Raw) -> None:
    """TestApplyCanTransferFieldOwnershipToController."""
    url = f"{DEPLOYMENTS}/deployment-transfer"
    body = deployment("deployment-transfer", replicas=3)
    applied = ok(apply(raw, url, body, "test_applier"))
    applied["spec"]["replicas"] = 4
    ok(raw.request("PUT", f"{url}?fieldManager=test_updater", applied))
    del body["spec"]["replicas"]
    assert ok(apply(raw, url, body, "test_applier"))["spec"]["replicas"] == 4


def test_apply_can_remove_map_items_contributed_to_by_controllers(raw: Raw) -> None:
    """TestApplyCanRemoveMapItemsContributedToByControllers."""
    url = f"{DEPLOYMENTS}/deployment-map-item-removal"
    body = deployment("deployment-map-item-removal")
    del body["spec"]["replicas"]
    applied = ok(apply(raw, url, body, "test_applier"))
    applied["spec"]["template"]["spec"]["containers"][0]["workingDir"] = "/home/replacement"
    ok(raw.request("PUT", f"{url}?fieldManager=test_updater", applied))
    body["spec"]["replicas"] = 3
    body["spec"]["template"]["spec"]["hostname"] = "test-hostname"
    body["spec"]["template"]["spec"]["containers"] = [{"name": "other-container", "image": "nginx:latest"}]
    got = ok(apply(raw, url, body, "test_applier"))
    assert [c["name"] for c in got["spec"]["template"]["spec"]["containers"]] == ["other-container"]


def test_default_missing_keys(raw: Raw) -> None:
    """TestDefaultMissingKeys: a list-map key left out is defaulted (protocol TCP) when merging, so a
    second applier changing the item conflicts once."""
    url = f"{DEPLOYMENTS}/default-missing-keys"
    body = deployment("default-missing-keys")
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"name": "foo", "containerPort": 80}]
    ok(apply(raw, url, body, "test_applier"))
    body["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "bar", "containerPort": 80, "protocol": "TCP"}
    ]
    code, status = apply(raw, url, body, "test_applier_conflict")
    assert code == 409 and len(status["details"]["causes"]) == 1, status


def test_upgrade_client_side_to_server_side_apply(raw: Raw) -> None:
    """TestUpgradeClientSideToServerSideApply."""
    created = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-deployment
  annotations:
    "kubectl.kubernetes.io/last-applied-configuration": |
      {"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"my-deployment",\
"labels":{"app":"my-app"}},"spec":{"replicas": 3,"template":{"metadata":{"labels":{"app":"my-app"}},\
"spec":{"containers":[{"name":"my-c","image":"my-image"}]}}}}
  labels:
    app: my-app
spec:
  replicas: 100000
  selector:
    matchLabels:
      app: my-app
  template:
    metadata:
      labels:
        app: my-app
    spec:
      containers:
      - name: my-c
        image: my-image
"""
    ok(raw.request("POST", DEPLOYMENTS, created, "application/yaml"), 201)
    url = f"{DEPLOYMENTS}/my-deployment"
    conflicting = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-deployment
  labels:
    app: my-new-label
spec:
  replicas: 3 # expect conflict
  template:
    metadata:
      labels:
        app: my-app
    spec:
      containers:
      - name: my-c
        image: my-image
"""
    assert apply(raw, url, conflicting, "kubectl")[0] == 409
    ok(
        apply(
            raw,
            url,
            conflicting.replace("  replicas: 3 # expect conflict\n", "").replace(
                "image: my-image", "image: my-image-new"
            ),
            "kubectl",
        )
    )
    got = ok(raw.request("GET", url))
    assert got["spec"]["replicas"] == 100000
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "my-image-new"


def test_renaming_applied_field_managers(raw: Raw) -> None:
    """TestRenamingAppliedFieldManagers: two appliers renamed to one by a PUT merge into one entry."""
    url = f"{PODS}/just-a-pod-rename-apply"
    ok(apply(raw, url, pod("just-a-pod-rename-apply", labels={"a": "one"}), "multi_manager_one"))
    ok(
        apply(
            raw,
            url,
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"b": "two"}}},
            "multi_manager_two",
        )
    )
    got = ok(raw.request("GET", url))
    assert got["metadata"]["labels"] == {"a": "one", "b": "two"}
    for e in got["metadata"]["managedFields"]:
        e["manager"] = "multi_manager"
    obj = ok(raw.request("PUT", url, got))
    [entry] = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("multi_manager", "Apply")
    assert entry["fieldsV1"] == {"f:metadata": {"f:labels": {"f:b": {}}}}


def test_renaming_updated_field_managers(raw: Raw) -> None:
    """TestRenamingUpdatedFieldManagers: two updaters renamed to one keep the later entry."""
    url = f"{PODS}/just-a-pod-rename-update"
    ok(apply(raw, url, pod("just-a-pod-rename-update"), "first"))
    ok(
        raw.request(
            "PATCH", f"{url}?fieldManager=multi_manager_one", '{"metadata":{"labels":{"a":"one"}}}', MERGE
        )
    )
    ok(
        raw.request(
            "PATCH", f"{url}?fieldManager=multi_manager_two", '{"metadata":{"labels":{"b":"two"}}}', MERGE
        )
    )
    got = ok(raw.request("GET", url))
    for e in got["metadata"]["managedFields"]:
        e["manager"] = "multi_manager"
    obj = ok(raw.request("PUT", url, got))
    entries = obj["metadata"]["managedFields"]
    assert len(entries) == 2
    assert (entries[1]["manager"], entries[1]["operation"]) == ("multi_manager", "Update")
    assert entries[1]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:b": {}}}}


def test_dropping_subresource_field(raw: Raw) -> None:
    """TestDroppingSubresourceField: a Pod's labels applied through status are kept (the Pod status
    strategy resets spec only); dropping the subresource of the entries merges them into one."""
    url = f"{PODS}/just-a-pod-drop-sub"
    ok(apply(raw, url, pod("just-a-pod-drop-sub"), "first"))
    ok(
        apply(
            raw,
            url,
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "one"}}},
            "label_manager",
        )
    )
    ok(
        apply(
            raw,
            f"{url}/status",
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"b": "two"}}},
            "label_manager",
        )
    )
    got = ok(raw.request("GET", url))
    assert got["metadata"]["labels"] == {"a": "one", "b": "two"}
    entries = got["metadata"]["managedFields"]
    assert managers(got) == [
        ("first", "Apply", ""),
        ("label_manager", "Apply", ""),
        ("label_manager", "Apply", "status"),
    ]
    for e in entries:
        e.pop("subresource", None)
    obj = ok(raw.request("PUT", url, got))
    assert managers(obj) == [("first", "Apply", ""), ("label_manager", "Apply", "")]
    assert obj["metadata"]["managedFields"][1]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:b": {}}}}


def test_dropping_subresource_from_spec_field(raw: Raw) -> None:
    """TestDroppingSubresourceFromSpecField."""
    url = f"{PODS}/just-a-pod-drop-spec"
    ok(apply(raw, url, pod("just-a-pod-drop-spec"), "first"))
    ok(raw.request("PATCH", f"{url}?fieldManager=manager", '{"metadata":{"labels":{"a":"two"}}}', MERGE))
    ok(raw.request("PATCH", f"{url}/status?fieldManager=manager", '{"status":{"phase":"Running"}}', MERGE))
    got = ok(raw.request("GET", url))
    assert got["metadata"]["labels"] == {"a": "two"} and got["status"]["phase"] == "Running"
    assert managers(got) == [
        ("first", "Apply", ""),
        ("manager", "Update", ""),
        ("manager", "Update", "status"),
    ]
    for e in got["metadata"]["managedFields"]:
        e.pop("subresource", None)
    obj = ok(raw.request("PUT", url, got))
    assert managers(obj) == [("first", "Apply", ""), ("manager", "Update", "")]
    assert obj["metadata"]["managedFields"][1]["fieldsV1"] == {"f:status": {"f:phase": {}}}


def test_subresource_field(raw: Raw) -> None:
    """TestSubresourceField: a scale patch's entry is (manager, Update, scale) owning spec.replicas."""
    url = f"{DEPLOYMENTS}/subresource-field"
    ok(apply(raw, url, deployment("subresource-field", replicas=3), "manager"))
    ok(raw.request("PATCH", f"{url}/scale?fieldManager=manager", '{"spec":{"replicas":32}}', MERGE))
    got = ok(raw.request("GET", url))
    assert managers(got) == [("manager", "Apply", ""), ("manager", "Update", "scale")]
    assert got["metadata"]["managedFields"][1]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


# --- status_test.go ------------------------------------------------------------------------------

#: One object per served kind with a status subresource (etcd.GetEtcdStorageData's stubs, trimmed
#: to what kubesim serves), and the status applied (statusData, else statusDefault).
STATUS_STUBS: dict[str, tuple[dict[str, Any], str]] = {
    "namespaces": (
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "status-ns"},
            "spec": {"finalizers": ["kubernetes"]},
        },
        "",
    ),
    "nodes": (
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "status-node"},
            "spec": {"unschedulable": True},
        },
        "",
    ),
    "services": (
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "status-svc"},
            "spec": {"ports": [{"port": 80}]},
        },
        '{"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}',
    ),
    "pods": (pod("status-pod"), ""),
    "deployments": (deployment("status-deploy"), ""),
    "jobs": (
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "status-job"},
            "spec": {
                "template": {
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
                }
            },
        },
        "",
    ),
    "horizontalpodautoscalers": (
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "status-hpa"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "x", "apiVersion": "apps/v1"},
                "maxReplicas": 3,
            },
        },
        '{"status": {"currentReplicas": 5, "desiredReplicas": 5}}',
    ),
    "customresourcedefinitions": (
        crd_manifest("status.example.com", "Pant", "pants", scope="Namespaced"),
        "",
    ),
}
STATUS_DEFAULT = '{"status": {"conditions": [{"type": "MyStatus", "status": "true"}]}}'


def _status_resources(raw: Raw) -> list[tuple[str, str, bool]]:
    """(group/version, resource, namespaced) of every `<resource>/status` discovery lists."""
    out = []
    versions = [("", v) for v in ok(raw.request("GET", "/api"))["versions"]]
    for group in ok(raw.request("GET", "/apis"))["groups"]:
        versions += [(group["name"], v["version"]) for v in group["versions"]]
    for group, version in versions:
        gv = f"{group}/{version}" if group else version
        prefix = f"/apis/{gv}" if group else f"/api/{version}"
        for r in ok(raw.request("GET", prefix))["resources"]:
            if r["name"].endswith("/status"):
                out.append((gv, r["name"].removesuffix("/status"), r["namespaced"]))
    return out


def test_apply_status(raw: Raw) -> None:
    """TestApplyStatus: for every served kind with a status subresource, a forced status apply leaves
    both the creator's and the status applier's entries."""
    resources = [r for r in _status_resources(raw) if r[1] in STATUS_STUBS or "." not in r[0]]
    assert {r for _, r, _ in resources} >= set(STATUS_STUBS) - {"customresourcedefinitions"}
    for gv, resource, namespaced in resources:
        stub, status = STATUS_STUBS[resource]
        prefix = (f"/apis/{gv}" if "/" in gv else f"/api/{gv}") + (
            "/namespaces/default" if namespaced else ""
        )
        obj = copy.deepcopy(stub)
        obj["apiVersion"] = gv
        name = obj["metadata"]["name"]
        ok(raw.request("POST", f"{prefix}/{resource}?fieldManager=create_test", obj), 201)
        body = json.loads(status or STATUS_DEFAULT)
        body.update(apiVersion=gv, kind=obj["kind"], metadata={"name": name})
        got = ok(apply(raw, f"{prefix}/{resource}/{name}/status", body, "apply_status_test", force=True))
        names = {e["manager"] for e in got["metadata"]["managedFields"]}
        assert {"apply_status_test", "create_test"} <= names, (resource, got["metadata"]["managedFields"])
        ok(raw.request("DELETE", f"{prefix}/{resource}/{name}"), 200, 202)


# --- scale_test.go -------------------------------------------------------------------------------


def _replicas_owners(obj: dict[str, Any]) -> set[str]:
    return {
        e["manager"]
        for e in obj["metadata"]["managedFields"]
        if "f:replicas" in e["fieldsV1"].get("f:spec", {})
    }


def _scale(replicas: int) -> dict[str, Any]:
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "test", "namespace": "default"},
        "spec": {"replicas": replicas},
    }


def _scale_walk(raw: Raw, url: str, body: dict[str, Any]) -> None:
    def check(replicas: int, *owners: str) -> None:
        obj = ok(raw.request("GET", url))
        assert obj["spec"]["replicas"] == replicas
        assert _replicas_owners(obj) == set(owners)

    ok(apply(raw, url, body))
    check(1, "apply_test")
    ok(raw.request("PATCH", f"{url}/scale?fieldManager=scale_test", '{"spec":{"replicas": 5}}', MERGE))
    check(5, "scale_test")
    assert apply(raw, url, body)[0] == 409
    ok(apply(raw, url, body, force=True))
    check(1, "apply_test")
    code, status = apply(raw, f"{url}/scale", _scale(17), "apply_scale")
    assert code == 409 and "apply_test" in status["message"], status
    ok(apply(raw, f"{url}/scale", _scale(17), "apply_scale", force=True))
    check(17, "apply_scale")
    ok(raw.request("PUT", f"{url}/scale?fieldManager=replace_test", _scale(7)))
    check(7, "replace_test")
    ok(apply(raw, f"{url}/scale", _scale(7), "co_owning_test"))
    check(7, "replace_test", "co_owning_test")
    ok(raw.request("PATCH", f"{url}/scale?fieldManager=scale_test", '{"spec":{"replicas": 5}}', MERGE))
    check(5, "scale_test")


def test_scale_all_resources(raw: Raw) -> None:
    """TestScaleAllResources: Deployment (StatefulSet, ReplicaSet and ReplicationController are not
    served) and a custom resource with a scale subresource."""
    body = deployment("test", replicas=1)
    _scale_walk(raw, f"{DEPLOYMENTS}/test", body)
    crd = crd_manifest(
        "scale.example.com",
        "Scaled",
        "scaleds",
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        subresources={
            "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}
        },
    )
    ok(raw.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd), 201)
    cr = {
        "apiVersion": "scale.example.com/v1",
        "kind": "Scaled",
        "metadata": {"name": "test"},
        "spec": {"replicas": 1},
    }
    _scale_walk(raw, "/apis/scale.example.com/v1/namespaces/default/scaleds/test", cr)


def test_scale_update_only_status(raw: Raw) -> None:
    """TestScaleUpdateOnlyStatus: a scale patch of status.replicas changes nothing and takes nothing."""
    url = f"{DEPLOYMENTS}/scale-only-status"
    ok(apply(raw, url, deployment("scale-only-status", replicas=1)))
    ok(raw.request("PATCH", f"{url}/scale?fieldManager=scale_test", '{"status":{"replicas": 42}}', MERGE))
    obj = ok(raw.request("GET", url))
    assert obj["spec"]["replicas"] == 1 and _replicas_owners(obj) == {"apply_test"}


# --- apply_crd_test.go ---------------------------------------------------------------------------

NOXU_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {
                "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                    "x-kubernetes-list-type": "map",
                    "items": {
                        "type": "object",
                        "required": ["containerPort", "protocol"],
                        "properties": {
                            "containerPort": {"format": "int32", "type": "integer"},
                            "hostIP": {"type": "string"},
                            "hostPort": {"format": "int32", "type": "integer"},
                            "name": {"type": "string"},
                            "protocol": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


def _noxu(raw: Raw, group: str, schema: dict[str, Any]) -> str:
    crd = crd_manifest(group, "WishIHadChosenNoxu", "noxus", schema, scope="Cluster", version="v1beta1")
    ok(raw.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd), 201)
    return f"/apis/{group}/v1beta1/noxus"


def _noxu_body(group: str, name: str, spec: str, finalizers: bool = False) -> str:
    head = f"apiVersion: {group}/v1beta1\nkind: WishIHadChosenNoxu\nmetadata:\n  name: {name}\n"
    if finalizers:
        head += "  finalizers:\n  - test-finalizer\n"
    return head + "spec:\n" + spec


def test_apply_crd_structural_schema(raw: Raw) -> None:
    """TestApplyCRDStructuralSchema: finalizers are a set, replicas conflict, list-map items by key."""
    group = "structural.example.com"
    url = _noxu(raw, group, NOXU_SCHEMA) + "/mytest"
    body = _noxu_body(
        group,
        "mytest",
        '  cronSpec: "* * * * */5"\n  replicas: 1\n  ports:\n  - name: x\n'
        "    containerPort: 80\n    protocol: TCP\n",
        finalizers=True,
    )
    obj = ok(apply(raw, url, body))
    assert obj["metadata"]["finalizers"] == ["test-finalizer"] and obj["spec"]["replicas"] == 1
    obj = ok(raw.request("PATCH", url, '{"metadata":{"finalizers":["test-finalizer","another-one"]}}', MERGE))
    assert len(obj["metadata"]["finalizers"]) == 2
    obj = ok(apply(raw, url, body))
    assert obj["metadata"]["finalizers"] == ["test-finalizer", "another-one"]
    assert ok(raw.request("PATCH", url, '{"spec":{"replicas": 5}}', MERGE))["spec"]["replicas"] == 5
    code, status = apply(raw, url, body)
    assert code == 409 and len(status["details"]["causes"]) == 1
    assert ok(apply(raw, url, body, force=True))["spec"]["replicas"] == 1
    other = _noxu_body(group, "mytest", '  ports:\n  - name: "y"\n    containerPort: 80\n    protocol: TCP\n')
    code, status = apply(raw, url, other, "apply_test_2")
    assert code == 409 and len(status["details"]["causes"]) == 1
    other = other.replace("containerPort: 80", "containerPort: 8080")
    assert len(ok(apply(raw, url, other, "apply_test_2"))["spec"]["ports"]) == 2
    assert (
        raw.request(
            "PUT",
            url.replace("mytest", "should-not-exist") + "?fieldManager=apply_test",
            _noxu_body(group, "should-not-exist", "  replicas: 1\n"),
            "application/yaml",
        )[0]
        == 404
    )
    ok(raw.request("PATCH", url, '{"metadata":{"finalizers":null}}', MERGE))


def test_default_missing_key_crd(raw: Raw) -> None:
    """TestDefaultMissingKeyCRD: a list-map key with a schema default keys the item when left out."""
    group = "defaultkey.example.com"
    schema = copy.deepcopy(NOXU_SCHEMA)
    item = schema["properties"]["spec"]["properties"]["ports"]["items"]
    item["properties"]["protocol"]["default"] = "TCP"
    item["required"] = ["containerPort"]
    url = _noxu(raw, group, schema) + "/mytest"
    ok(
        apply(
            raw,
            url,
            _noxu_body(group, "mytest", "  replicas: 1\n  ports:\n  - name: x\n    containerPort: 80\n"),
        )
    )
    other = _noxu_body(group, "mytest", '  ports:\n  - name: "y"\n    containerPort: 80\n    protocol: TCP\n')
    code, status = apply(raw, url, other, "apply_test_2")
    assert code == 409 and len(status["details"]["causes"]) == 1, status


def test_noop_apply_with_defaults_same_resource_version_crd(raw: Raw) -> None:
    """TestNoOpApplyWithDefaultsSameResourceVersionCRD: an atomic struct completed by a default is no
    change when re-applied."""
    group = "noopdefaults.example.com"
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "infrastructureRef": {
                        "type": "object",
                        "x-kubernetes-map-type": "atomic",
                        "properties": {
                            "name": {"type": "string"},
                            "namespace": {"type": "string", "default": "default-namespace"},
                        },
                    }
                },
            }
        },
    }
    url = _noxu(raw, group, schema) + "/mytest"
    body = {
        "apiVersion": f"{group}/v1beta1",
        "kind": "WishIHadChosenNoxu",
        "metadata": {"name": "mytest"},
        "spec": {"infrastructureRef": {"name": "infrastructure-machine-1\n"}},
    }
    created = ok(apply(raw, url, body))
    time.sleep(1)
    updated = ok(apply(raw, url, body))
    assert updated["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
