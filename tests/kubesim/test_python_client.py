"""The Python `kubernetes` client (DynamicClient, server-side apply) against kubesim: the same
scenarios kubectl runs, through the client spindle's reconciler uses."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config, dynamic, watch
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, UnprocessibleEntityError
from kubesim_fixtures import PORTS_BY_NAME, crd_manifest, deployment, spec_schema

APPLY = "application/apply-patch+yaml"


@pytest.fixture(scope="module")
def dyn(kubeconfig: Path) -> Iterator[dynamic.DynamicClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield dynamic.DynamicClient(api)
    finally:
        api.close()


def _deployments(dyn: dynamic.DynamicClient) -> Any:
    return dyn.resources.get(api_version="apps/v1", kind="Deployment")


def _apply(res: Any, body: dict[str, Any], manager: str, force: bool = False, **kw: Any) -> Any:
    if force:
        kw["force_conflicts"] = True
    return res.patch(
        body=body,
        name=body["metadata"]["name"],
        namespace="default",
        content_type=APPLY,
        field_manager=manager,
        **kw,
    )


def test_apply_conflict_then_force_moves_ownership(dyn: dynamic.DynamicClient) -> None:
    res = _deployments(dyn)
    created = _apply(res, deployment("py-shop", replicas=2), "spindle")
    assert created.spec.replicas == 2
    with pytest.raises(ConflictError) as info:
        _apply(res, deployment("py-shop", replicas=4), "hpa")
    status = json.loads(info.value.body)
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "spindle": .spec.replicas'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "spindle"', "field": ".spec.replicas"}
    ]
    forced = _apply(res, deployment("py-shop", replicas=4), "hpa", force=True)
    assert forced.spec.replicas == 4
    managers = {m["manager"]: m for m in forced.to_dict()["metadata"]["managedFields"]}
    assert "f:replicas" in managers["hpa"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in managers["spindle"]["fieldsV1"]["f:spec"]


def test_shared_ownership_on_equal_values_is_not_a_conflict(dyn: dynamic.DynamicClient) -> None:
    res = _deployments(dyn)
    _apply(res, deployment("py-shared", replicas=3), "one")
    both = _apply(res, deployment("py-shared", replicas=3), "two")
    owners = [
        m["manager"]
        for m in both.to_dict()["metadata"]["managedFields"]
        if "f:replicas" in m["fieldsV1"].get("f:spec", {})
    ]
    assert sorted(owners) == ["one", "two"]


def test_dropping_a_field_removes_it_and_noop_keeps_resource_version(dyn: dynamic.DynamicClient) -> None:
    res = _deployments(dyn)
    first = _apply(res, deployment("py-prune", tier="web"), "spindle")
    assert first.metadata.labels["tier"] == "web"
    second = _apply(res, deployment("py-prune"), "spindle")
    assert "tier" not in second.metadata.labels
    again = _apply(res, deployment("py-prune"), "spindle")
    assert again.metadata.resourceVersion == second.metadata.resourceVersion
    assert again.metadata.managedFields == second.metadata.managedFields


def test_dry_run_apply_stores_nothing(dyn: dynamic.DynamicClient) -> None:
    res = _deployments(dyn)
    live = _apply(res, deployment("py-dry", replicas=1), "spindle")
    preview = _apply(res, deployment("py-dry", replicas=7), "spindle", dry_run="All")
    assert preview.spec.replicas == 7
    assert preview.metadata.generation == 2
    after = res.get(name="py-dry", namespace="default")
    assert after.spec.replicas == 1 and after.metadata.resourceVersion == live.metadata.resourceVersion
    with pytest.raises(NotFoundError):
        res.get(name="py-never", namespace="default")
    _apply(res, deployment("py-never"), "spindle", dry_run="All")
    with pytest.raises(NotFoundError):
        res.get(name="py-never", namespace="default")


def test_update_with_stale_resource_version_is_a_409(dyn: dynamic.DynamicClient) -> None:
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    made = cms.create(
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py-occ"}, "data": {"a": "1"}},
        namespace="default",
    )
    body = made.to_dict()
    body["data"] = {"a": "2"}
    cms.replace(body=body, namespace="default")
    body["data"] = {"a": "3"}  # still carries the old resourceVersion
    with pytest.raises(ConflictError) as info:
        cms.replace(body=body, namespace="default")
    assert "the object has been modified; please apply your changes to the latest version" in str(
        info.value.body
    )


def test_delete_cascades_through_owner_references(dyn: dynamic.DynamicClient) -> None:
    res = _deployments(dyn)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    owner = _apply(res, deployment("py-owner"), "spindle")
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "py-owner", "uid": owner.metadata.uid}
    for name in ("py-child-1", "py-child-2"):
        cms.create(
            body={
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "ownerReferences": [ref]},
            },
            namespace="default",
        )
    res.delete(name="py-owner", namespace="default", body={"propagationPolicy": "Foreground"})
    deadline = time.monotonic() + 10
    names: set[str] = {"py-child-1"}
    while time.monotonic() < deadline:
        names = {i.metadata.name for i in cms.get(namespace="default").items}
        try:
            res.get(name="py-owner", namespace="default")
        except NotFoundError:
            if not names & {"py-child-1", "py-child-2"}:
                break
        time.sleep(0.05)
    assert not names & {"py-child-1", "py-child-2"}
    with pytest.raises(NotFoundError):
        res.get(name="py-owner", namespace="default")


def test_watch_sees_added_modified_deleted(dyn: dynamic.DynamicClient) -> None:
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    rv = cms.get(namespace="default").metadata.resourceVersion
    seen: list[tuple[str, str]] = []

    def run() -> None:
        w = watch.Watch()
        for ev in dyn.watch(cms, namespace="default", resource_version=rv, timeout=5, watcher=w):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.3)
    cms.create(
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py-w"}}, namespace="default"
    )
    cms.patch(
        body={"data": {"x": "1"}},
        name="py-w",
        namespace="default",
        content_type="application/merge-patch+json",
    )
    cms.delete(name="py-w", namespace="default")
    t.join(timeout=10)
    assert [s for s in seen if s[1] == "py-w"] == [
        ("ADDED", "py-w"),
        ("MODIFIED", "py-w"),
        ("DELETED", "py-w"),
    ]


def test_crd_object_is_served_and_validated(dyn: dynamic.DynamicClient) -> None:
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crd = crd_manifest(
        "example.org",
        "Gadget",
        "gadgets",
        spec_schema({"ports": PORTS_BY_NAME}),
        scope="Cluster",
        version="v1alpha1",
    )
    made = crds.patch(body=crd, name="gadgets.example.org", content_type=APPLY, field_manager="spindle")
    conditions = {c["type"]: c["status"] for c in crds.get(name=made.metadata.name).status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    dyn.resources.invalidate_cache()
    gadgets = dyn.resources.get(api_version="example.org/v1alpha1", kind="Gadget")
    g = {
        "apiVersion": "example.org/v1alpha1",
        "kind": "Gadget",
        "metadata": {"name": "g1"},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }
    gadgets.patch(body=g, name="g1", content_type=APPLY, field_manager="a")
    other = {**g, "spec": {"ports": [{"name": "grpc", "port": 9090}]}}
    merged = gadgets.patch(body=other, name="g1", content_type=APPLY, field_manager="b")
    assert sorted(p["name"] for p in merged.spec.ports) == ["grpc", "http"]  # list-map: merged by key
    with pytest.raises(UnprocessibleEntityError) as info:
        gadgets.patch(
            body={**g, "spec": {"ports": [{"name": "x", "port": "eighty"}]}},
            name="g1",
            content_type=APPLY,
            field_manager="a",
        )
    assert "spec.ports" in str(info.value.body)
    crds.delete(name="gadgets.example.org")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            crds.get(name="gadgets.example.org")
        except NotFoundError:
            break
        time.sleep(0.05)
    with pytest.raises(NotFoundError):
        crds.get(name="gadgets.example.org")
