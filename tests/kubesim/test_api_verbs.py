"""The verbs and metadata rules over raw HTTPS: selectors, paging, generateName, generation,
finalizers, propagation policies, watch resume and expiry, subresources, namespaces, discovery."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubesim_fixtures import PRESERVE_UNKNOWN, Raw, crd_manifest, deployment, spec_schema, watch_lines

from kubesim import server as kserver
from kubesim import storage

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
APPLY = "application/apply-patch+yaml"


def cm(name: str, labels: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}, **meta},
    }


def _wait_gone(raw: Raw, path: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if raw.request("GET", path)[0] == 404:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module", autouse=True)
def labelled(running: kserver.RunningServer) -> None:
    client = Raw(running)
    for name, labels in [
        ("sel-a", {"env": "prod", "tier": "web"}),
        ("sel-b", {"env": "dev", "tier": "web"}),
        ("sel-c", {"env": "prod"}),
        ("sel-d", {}),
    ]:
        assert (
            client.request("POST", CMS, cm(name, {**labels, "sel": "1"} if labels else {"sel": "1"}))[0]
            == 201
        )
    client.close()


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", ["sel-a", "sel-c"]),
        ("env==prod", ["sel-a", "sel-c"]),
        ("env!=prod", ["sel-b", "sel-d"]),
        ("env in (dev,prod),tier", ["sel-a", "sel-b"]),
        ("env notin (prod)", ["sel-b", "sel-d"]),
        ("tier", ["sel-a", "sel-b"]),
        ("!tier", ["sel-c", "sel-d"]),
        ("env=prod,!tier", ["sel-c"]),
    ],
)
def test_label_selectors(raw: Raw, selector: str, expected: list[str]) -> None:
    from urllib.parse import quote

    status, doc = raw.request("GET", f"{CMS}?labelSelector={quote('sel=1,' + selector)}")
    assert status == 200
    assert [i["metadata"]["name"] for i in doc["items"]] == expected


def test_field_selectors_and_all_namespaces(raw: Raw) -> None:
    status, doc = raw.request("GET", "/api/v1/configmaps?fieldSelector=metadata.name%3Dsel-b")
    assert status == 200 and [i["metadata"]["name"] for i in doc["items"]] == ["sel-b"]
    status, doc = raw.request("GET", "/api/v1/configmaps?fieldSelector=metadata.namespace%21%3Ddefault")
    assert all(i["metadata"]["namespace"] != "default" for i in doc["items"])


def test_limit_and_continue_page_through_everything(raw: Raw) -> None:
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        status, doc = raw.request(
            "GET", f"{CMS}?labelSelector=sel%3D1&limit=3" + (f"&continue={token}" if token else "")
        )
        assert status == 200
        pages += 1
        seen += [i["metadata"]["name"] for i in doc["items"]]
        token = doc["metadata"].get("continue", "")
        if not token:
            break
        assert doc["metadata"]["remainingItemCount"] > 0
    assert pages == 2 and seen == ["sel-a", "sel-b", "sel-c", "sel-d"]


def test_generate_name_uid_timestamps_and_global_resource_version(raw: Raw) -> None:
    status, a = raw.request(
        "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
    )
    assert status == 201
    name = a["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5
    assert a["metadata"]["uid"] and a["metadata"]["creationTimestamp"].endswith("Z")
    status, b = raw.request("POST", "/api/v1/namespaces/kube-system/configmaps", cm("other-ns"))
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    assert raw.request("POST", CMS, cm(name))[0] == 409


def test_generation_counts_spec_changes_only(raw: Raw) -> None:
    status, d = raw.request("PATCH", DEPLOYS + "/gen?fieldManager=t", deployment("gen"), APPLY)
    assert status == 201 and d["metadata"]["generation"] == 1
    labelled = deployment("gen", team="a")
    status, d = raw.request("PATCH", DEPLOYS + "/gen?fieldManager=t", labelled, APPLY)
    assert d["metadata"]["generation"] == 1  # metadata only
    labelled["spec"]["replicas"] = 4
    status, d = raw.request("PATCH", DEPLOYS + "/gen?fieldManager=t", labelled, APPLY)
    assert d["metadata"]["generation"] == 2
    status, d = raw.request("PUT", DEPLOYS + "/gen/status", {**d, "status": {"replicas": 4}})
    assert status == 200 and d["metadata"]["generation"] == 2 and d["status"]["replicas"] == 4


def test_status_subresource_splits_spec_and_status(raw: Raw) -> None:
    status, d = raw.request(
        "PATCH", DEPLOYS + "/split?fieldManager=t", deployment("split", replicas=1), APPLY
    )
    status, d = raw.request(
        "PATCH",
        DEPLOYS + "/split/status?fieldManager=ctl",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "split"},
            "status": {"readyReplicas": 1},
            "spec": {"replicas": 9},
        },
        APPLY,
    )
    assert status == 200 and d["status"]["readyReplicas"] == 1 and d["spec"]["replicas"] == 1
    owners = {(m["manager"], m.get("subresource", "")) for m in d["metadata"]["managedFields"]}
    assert ("ctl", "status") in owners
    status, d = raw.request(
        "PATCH", DEPLOYS + "/split", {"status": {"readyReplicas": 7}}, "application/merge-patch+json"
    )
    assert d["status"]["readyReplicas"] == 1  # the main resource ignores status


def test_scale_subresource(raw: Raw) -> None:
    raw.request("PATCH", DEPLOYS + "/sc?fieldManager=t", deployment("sc", replicas=2), APPLY)
    status, scale = raw.request("GET", DEPLOYS + "/sc/scale")
    assert status == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    assert scale["status"]["selector"] == "app=sc"
    status, scale = raw.request(
        "PATCH", DEPLOYS + "/sc/scale", {"spec": {"replicas": 5}}, "application/merge-patch+json"
    )
    assert status == 200 and scale["spec"]["replicas"] == 5
    assert raw.request("GET", DEPLOYS + "/sc")[1]["spec"]["replicas"] == 5


def test_finalizers_hold_deletion_until_removed(raw: Raw) -> None:
    raw.request("POST", CMS, cm("fin", finalizers=["example.com/hold"]))
    status, doc = raw.request("DELETE", CMS + "/fin")
    assert status in (200, 202) and doc["metadata"]["deletionTimestamp"]
    status, live = raw.request("GET", CMS + "/fin")
    assert status == 200 and live["metadata"]["finalizers"] == ["example.com/hold"]
    status, _ = raw.request(
        "PATCH", CMS + "/fin", {"metadata": {"finalizers": None}}, "application/merge-patch+json"
    )
    assert status == 200
    assert raw.request("GET", CMS + "/fin")[0] == 404


@pytest.mark.parametrize(
    ("policy", "survives"), [("Background", False), ("Foreground", False), ("Orphan", True)]
)
def test_propagation_policies(raw: Raw, policy: str, survives: bool) -> None:
    owner = f"own-{policy.lower()}"
    _, d = raw.request("PATCH", f"{DEPLOYS}/{owner}?fieldManager=t", deployment(owner), APPLY)
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner, "uid": d["metadata"]["uid"]}
    raw.request("POST", CMS, cm(f"{owner}-dep", ownerReferences=[ref]))
    status, _ = raw.request("DELETE", f"{DEPLOYS}/{owner}", {"propagationPolicy": policy})
    assert status in (200, 202)
    assert _wait_gone(raw, f"{DEPLOYS}/{owner}")
    if survives:
        time.sleep(0.3)
        status, dep = raw.request("GET", f"{CMS}/{owner}-dep")
        assert status == 200 and "ownerReferences" not in dep["metadata"]
    else:
        assert _wait_gone(raw, f"{CMS}/{owner}-dep")


def test_dependent_with_a_living_second_owner_survives(raw: Raw) -> None:
    uids = {}
    for name in ("two-a", "two-b"):
        uids[name] = raw.request("PATCH", f"{DEPLOYS}/{name}?fieldManager=t", deployment(name), APPLY)[1][
            "metadata"
        ]["uid"]
    refs = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": n, "uid": u} for n, u in uids.items()]
    raw.request("POST", CMS, cm("two-dep", ownerReferences=refs))
    raw.request("DELETE", f"{DEPLOYS}/two-a")
    time.sleep(0.5)
    assert raw.request("GET", f"{CMS}/two-dep")[0] == 200
    raw.request("DELETE", f"{DEPLOYS}/two-b")
    assert _wait_gone(raw, f"{CMS}/two-dep")


def test_namespaces_must_exist_and_deleting_one_empties_it(raw: Raw) -> None:
    assert raw.request("POST", "/api/v1/namespaces/team/configmaps", cm("x"))[0] == 404
    assert (
        raw.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}},
        )[0]
        == 201
    )
    assert raw.request("POST", "/api/v1/namespaces/team/configmaps", cm("x"))[0] == 201
    status, _ = raw.request("DELETE", "/api/v1/namespaces/team")
    assert status in (200, 202)
    assert _wait_gone(raw, "/api/v1/namespaces/team")
    assert raw.request("GET", "/api/v1/namespaces/team/configmaps/x")[0] == 404


def test_watch_resumes_from_a_resource_version(raw: Raw, running: kserver.RunningServer) -> None:
    _, first = raw.request("POST", CMS, cm("resume-1"))
    raw.request("POST", CMS, cm("resume-2"))
    raw.request("DELETE", CMS + "/resume-1")
    rv = first["metadata"]["resourceVersion"]
    events = watch_lines(running, f"{CMS}?watch=1&resourceVersion={rv}&fieldSelector=metadata.name%21%3Dx", 2)
    got = [
        (e["type"], e["object"]["metadata"]["name"])
        for e in events
        if e["object"]["metadata"]["name"].startswith("resume")
    ]
    assert got == [("ADDED", "resume-2"), ("DELETED", "resume-1")]


def test_watch_from_an_expired_resource_version_is_410(raw: Raw, running: kserver.RunningServer) -> None:
    store = running.cluster.store
    for i in range(5):
        raw.request("POST", CMS, cm(f"churn-{i}"))
    oldest = store.oldest_event_rv()
    # Drop the oldest events as the bounded log would after EVENT_LOG_SIZE writes.
    with store.lock:
        while store.events and store.events[0].rv < store.rv - 2:
            store.events.popleft()
    events = watch_lines(running, f"{CMS}?watch=1&resourceVersion={oldest}", 1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    assert storage.EVENT_LOG_SIZE >= 1000


def test_watch_timeout_seconds_ends_the_stream(running: kserver.RunningServer) -> None:
    start = time.monotonic()
    # The client would give up only after 30 s; ending far sooner means the server closed it.
    events = watch_lines(
        running, f"{CMS}?watch=1&timeoutSeconds=1&resourceVersion={running.cluster.store.rv}", 10, timeout=30
    )
    assert events == [] and time.monotonic() - start < 15


def test_discovery_documents(raw: Raw) -> None:
    status, groups = raw.request("GET", "/apis")
    names = {g["name"] for g in groups["groups"]}
    assert {
        "apps",
        "batch",
        "node.k8s.io",
        "coordination.k8s.io",
        "autoscaling",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
    } <= names
    _, core = raw.request("GET", "/api/v1")
    scopes = {r["name"]: r["namespaced"] for r in core["resources"]}
    assert scopes["namespaces"] is False and scopes["nodes"] is False and scopes["configmaps"] is True
    _, apps = raw.request("GET", "/apis/apps/v1")
    assert {"deployments", "deployments/status", "deployments/scale"} <= {
        r["name"] for r in apps["resources"]
    }
    status, index = raw.request("GET", "/openapi/v3")
    assert "apis/apps/v1" in index["paths"]
    status, doc = raw.request("GET", index["paths"]["apis/apps/v1"]["serverRelativeURL"])
    assert status == 200 and "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    status, v2 = raw.request("GET", "/openapi/v2")
    assert status == 200 and v2["swagger"] == "2.0"


def test_deletecollection_by_label(raw: Raw) -> None:
    for i in range(3):
        raw.request("POST", CMS, cm(f"dc-{i}", {"dc": "yes"}))
    status, doc = raw.request("DELETE", CMS + "?labelSelector=dc%3Dyes")
    assert status == 200 and len(doc["items"]) == 3
    assert raw.request("GET", CMS + "?labelSelector=dc%3Dyes")[1]["items"] == []


def test_deleting_a_crd_deletes_its_objects_and_stops_serving_it(raw: Raw) -> None:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    crd = crd_manifest(
        "example.net",
        "Nut",
        "nuts",
        spec_schema({"size": {"type": "integer"}}),
    )
    assert raw.request("POST", crds, crd)[0] == 201
    nuts = "/apis/example.net/v1/namespaces/default/nuts"
    for i in range(3):
        assert (
            raw.request(
                "POST",
                nuts,
                {
                    "apiVersion": "example.net/v1",
                    "kind": "Nut",
                    "metadata": {"name": f"n{i}"},
                    "spec": {"size": i},
                },
            )[0]
            == 201
        )
    status, doc = raw.request(
        "PUT",
        nuts + "/n0",
        {"apiVersion": "example.net/v1", "kind": "Nut", "metadata": {"name": "n0"}, "spec": {"size": 9}},
    )
    assert status == 422 and "resourceVersion" in doc["message"]  # custom objects: no unconditional update
    assert raw.request("DELETE", crds + "/nuts.example.net")[0] in (200, 202)
    assert _wait_gone(raw, crds + "/nuts.example.net")
    assert raw.request("GET", nuts)[0] == 404
    assert "example.net" not in {g["name"] for g in raw.request("GET", "/apis")[1]["groups"]}
    assert raw.request("POST", crds, crd)[0] == 201
    assert raw.request("GET", nuts + "/n1")[0] == 404
    assert raw.request("GET", nuts)[1]["items"] == []


def test_cluster_scoped_objects_never_carry_a_namespace(raw: Raw) -> None:
    body = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    status, made = raw.request(
        "PATCH", "/apis/rbac.authorization.k8s.io/v1/clusterroles/reader?fieldManager=t", body, APPLY
    )
    assert status == 201 and "namespace" not in made["metadata"]
    assert (
        raw.request("GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/clusterroles/reader")[0]
        == 404
    )


def test_custom_object_generation_with_and_without_status_subresource(raw: Raw) -> None:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for plural, sub in (("plains", {}), ("splits", {"status": {}})):
        crd = crd_manifest(
            "gen.example", plural.capitalize()[:-1], plural, PRESERVE_UNKNOWN, subresources=sub
        )
        assert raw.request("POST", crds, crd)[0] == 201
    gens = {}
    for plural in ("plains", "splits"):
        path = f"/apis/gen.example/v1/namespaces/default/{plural}"
        kind = plural.capitalize()[:-1]
        status, made = raw.request(
            "POST",
            path,
            {"apiVersion": "gen.example/v1", "kind": kind, "metadata": {"name": "o"}, "spec": {"a": 1}},
        )
        assert status == 201 and made["metadata"]["generation"] == 1
        status, out = raw.request(
            "PATCH", path + "/o", {"status": {"ok": True}}, "application/merge-patch+json"
        )
        assert status == 200
        gens[plural] = (out["metadata"]["generation"], out.get("status"))
    assert gens["plains"] == (2, {"ok": True})  # status is just another field there
    assert gens["splits"] == (1, None)  # the main resource ignores status


def test_event_field_selectors_as_kubectl_describe_uses_them(raw: Raw) -> None:
    events = "/api/v1/namespaces/default/events"
    for i, (name, reason) in enumerate([("web", "Scaled"), ("web", "Failed"), ("db", "Scaled")]):
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"ev-{i}"},
            "involvedObject": {"kind": "Deployment", "namespace": "default", "name": name},
            "reason": reason,
            "type": "Normal",
            "source": {"component": "spindle"},
        }
        assert raw.request("POST", events, body)[0] == 201
    from urllib.parse import quote

    sel = quote("involvedObject.name=web,involvedObject.kind=Deployment,reason!=Failed,source=spindle")
    status, doc = raw.request("GET", f"{events}?fieldSelector={sel}")
    assert status == 200 and [e["metadata"]["name"] for e in doc["items"]] == ["ev-0"]
    assert raw.request("GET", f"{CMS}?fieldSelector=reason%3Dx")[0] == 400  # not a ConfigMap field


def test_watch_list_ends_initial_events_with_a_bookmark(raw: Raw, running: kserver.RunningServer) -> None:
    raw.request("POST", CMS, cm("wl-1", {"wl": "y"}))
    raw.request("POST", CMS, cm("wl-2", {"wl": "y"}))
    events = watch_lines(
        running,
        f"{CMS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&labelSelector=wl%3Dy&timeoutSeconds=2",
        3,
    )
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_prometheus_metrics(raw: Raw) -> None:
    raw.request("GET", CMS)
    raw.request("GET", CMS + "/does-not-exist")
    status, text = raw.request("GET", "/metrics")
    assert status == 200 and isinstance(text, str)
    assert 'apiserver_request_total{code="200",resource="configmaps",verb="LIST"}' in text
    assert 'apiserver_request_total{code="404",resource="configmaps",verb="GET"}' in text
    assert 'apiserver_storage_objects{resource="namespaces"}' in text
    assert "apiserver_request_duration_seconds_bucket" in text
    assert Raw(raw.running, token=None).request("GET", "/metrics")[0] == 401


def test_selector_watch_sees_objects_enter_and_leave(raw: Raw, running: kserver.RunningServer) -> None:
    _, made = raw.request("POST", CMS, cm("mover", {"team": "a"}))
    rv = made["metadata"]["resourceVersion"]
    for team in ("b", "a", "a"):
        raw.request(
            "PATCH",
            CMS + "/mover",
            {"metadata": {"labels": {"team": team}}, "data": {"t": team + rv}},
            "application/merge-patch+json",
        )
    raw.request("PATCH", CMS + "/mover", {"data": {"x": "1"}}, "application/merge-patch+json")
    events = watch_lines(
        running, f"{CMS}?watch=1&resourceVersion={rv}&labelSelector=team%3Da&timeoutSeconds=2", 4
    )
    assert [e["type"] for e in events] == ["DELETED", "ADDED", "MODIFIED"]


def test_delete_answers_a_status_or_the_pending_object(raw: Raw) -> None:
    _, made = raw.request("POST", CMS, cm("del-now"))
    status, doc = raw.request("DELETE", CMS + "/del-now")
    assert status == 200 and doc["kind"] == "Status" and doc["status"] == "Success"
    assert doc["details"] == {"name": "del-now", "kind": "configmaps", "uid": made["metadata"]["uid"]}
    raw.request("POST", CMS, cm("del-later", finalizers=["example.com/x"]))
    status, doc = raw.request("DELETE", CMS + "/del-later")
    assert status == 200 and doc["kind"] == "ConfigMap" and doc["metadata"]["deletionTimestamp"]
    raw.request(
        "PATCH", CMS + "/del-later", {"metadata": {"finalizers": None}}, "application/merge-patch+json"
    )


def test_orphan_finalizer_releases_dependents(raw: Raw) -> None:
    _, owner = raw.request("POST", CMS, cm("orph-owner", finalizers=["orphan"]))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "orph-owner", "uid": owner["metadata"]["uid"]}
    raw.request("POST", CMS, cm("orph-dep", ownerReferences=[ref]))
    raw.request("DELETE", CMS + "/orph-owner")
    assert _wait_gone(raw, CMS + "/orph-owner")
    time.sleep(0.3)
    status, dep = raw.request("GET", CMS + "/orph-dep")
    assert status == 200 and "ownerReferences" not in dep["metadata"]


def test_services_get_cluster_ips_and_node_ports_that_updates_keep(raw: Raw) -> None:
    svcs = "/api/v1/namespaces/default/services"

    def svc(name: str, kind: str = "ClusterIP") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"type": kind, "selector": {"app": name}, "ports": [{"port": 80}]},
        }

    _, a = raw.request("PATCH", f"{svcs}/svc-a?fieldManager=t", svc("svc-a"), APPLY)
    _, b = raw.request("POST", svcs, svc("svc-b", "NodePort"))
    ip_a, ip_b = a["spec"]["clusterIP"], b["spec"]["clusterIP"]
    assert ip_a != ip_b and ip_a.startswith("10.") and a["spec"]["clusterIPs"] == [ip_a]
    assert 30000 <= b["spec"]["ports"][0]["nodePort"] <= 32767
    assert "f:clusterIP" not in json.dumps(a["metadata"]["managedFields"])  # allocated, not applied
    b["spec"].pop("clusterIP")
    b["spec"].pop("clusterIPs")
    node_port = b["spec"]["ports"][0].pop("nodePort")
    status, b2 = raw.request("PUT", f"{svcs}/svc-b", b)
    assert status == 200 and b2["spec"]["clusterIP"] == ip_b
    assert b2["spec"]["ports"][0]["nodePort"] == node_port
    _, again = raw.request("PATCH", f"{svcs}/svc-a?fieldManager=t", svc("svc-a"), APPLY)
    assert (
        again["spec"]["clusterIP"] == ip_a
        and again["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
    )


@pytest.mark.parametrize(
    ("accept", "code"),
    [
        ("", 200),
        ("application/json", 200),
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json", 200),
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", 406),
        ("application/vnd.kubernetes.protobuf, */*", 200),
    ],
)
def test_discovery_negotiation(raw: Raw, accept: str, code: int) -> None:
    status, doc = raw.request("GET", "/apis", headers={"Accept": accept} if accept else None)
    assert status == code
    assert doc["kind"] == ("APIGroupList" if code == 200 else "Status")


def test_secret_string_data_is_folded_into_data(raw: Raw) -> None:
    secrets = "/api/v1/namespaces/default/secrets"
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sd"},
        "data": {"a": "QQ=="},
        "stringData": {"b": "hunter2"},
    }
    status, made = raw.request("PATCH", f"{secrets}/sd?fieldManager=t", body, APPLY)
    assert status == 201 and made["data"] == {"a": "QQ==", "b": "aHVudGVyMg=="} and "stringData" not in made
    assert made["type"] == "Opaque"
    status, put = raw.request("PUT", f"{secrets}/sd", {**made, "stringData": {"a": "changed"}})
    assert status == 200 and put["data"]["a"] == "Y2hhbmdlZA==" and "stringData" not in put


def test_namespace_waits_for_finalizers_of_its_contents(raw: Raw) -> None:
    ns = "/api/v1/namespaces"
    raw.request("POST", ns, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "held"}})
    raw.request("POST", f"{ns}/held/configmaps", cm("pin", finalizers=["example.com/pin"]))
    raw.request("DELETE", f"{ns}/held")
    time.sleep(0.5)
    status, live = raw.request("GET", f"{ns}/held")
    assert status == 200 and live["status"]["phase"] == "Terminating"
    assert raw.request("POST", f"{ns}/held/configmaps", cm("late"))[0] == 403
    raw.request(
        "PATCH",
        f"{ns}/held/configmaps/pin",
        {"metadata": {"finalizers": None}},
        "application/merge-patch+json",
    )
    assert _wait_gone(raw, f"{ns}/held")
