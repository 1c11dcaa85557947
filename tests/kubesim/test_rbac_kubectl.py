"""Who is asking, with real kubectl: the admin token, a static token file, ServiceAccount tokens
from `kubectl create token`, impersonation (`--as`, `--as-group`), RBAC over Roles, ClusterRoles
(aggregated too) and their bindings, `kubectl auth can-i [--list]` and `kubectl auth whoami`.

Expected wording is kube-apiserver's (k8s.io/apiserver/pkg/endpoints/handlers/responsewriters
`forbiddenMessage`, and kubernetes `test/integration/auth/rbac_test.go`,
`test/integration/apiserver/apply/apply_test.go` TestCreateOnApplyFailsWithForbidden).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubesim_fixtures import Raw
from kubesim_fixtures import kubectl as _kubectl

from kubesim import server as kserver

pytestmark = pytest.mark.slow

TOKENS = """\
# token,user,uid,"groups"
alice-token,alice,1001,"devs,qa"
bob-token,bob,1002
carol-token,carol,1003,"impersonators"
"""
CMS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[kserver.RunningServer, Path]]:
    directory = Path(tempfile.mkdtemp(prefix="kubesim-rbac-"))
    (directory / "tokens.csv").write_text(TOKENS)
    srv = kserver.start(":memory:", token_file=directory / "tokens.csv")
    srv.kubeconfig(directory / "kubeconfig")
    try:
        yield srv, directory / "kubeconfig"
    finally:
        srv.stop()
        shutil.rmtree(directory, ignore_errors=True)


def kc(cluster: tuple[kserver.RunningServer, Path], *args: str, token: str = "", check: bool = False) -> Any:
    extra = ("--token", token) if token else ()
    return _kubectl(cluster[1], *args, *extra, check=check)


def admin(cluster: tuple[kserver.RunningServer, Path], *args: str) -> Any:
    return _kubectl(cluster[1], *args)


def whoami(cluster: tuple[kserver.RunningServer, Path], *args: str, token: str = "") -> dict[str, Any]:
    proc = kc(cluster, "auth", "whoami", "-o", "json", *args, token=token, check=True)
    info: dict[str, Any] = json.loads(proc.stdout)["status"]["userInfo"]
    return info


def test_whoami_under_each_kind_of_identity(cluster: tuple[kserver.RunningServer, Path]) -> None:
    assert whoami(cluster) == {
        "username": "kubernetes-admin",
        "groups": ["system:masters", "system:authenticated"],
    }
    assert whoami(cluster, token="alice-token") == {
        "username": "alice",
        "uid": "1001",
        "groups": ["devs", "qa", "system:authenticated"],
    }
    assert whoami(cluster, token="bob-token")["groups"] == ["system:authenticated"]
    admin(cluster, "create", "serviceaccount", "whoami-sa")
    token = admin(cluster, "create", "token", "whoami-sa").stdout.strip()
    info = whoami(cluster, token=token)
    assert info["username"] == "system:serviceaccount:default:whoami-sa"
    assert info["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    ]
    uid = json.loads(admin(cluster, "get", "sa", "whoami-sa", "-o", "json").stdout)["metadata"]["uid"]
    assert info["uid"] == uid


def test_unknown_token_is_401(cluster: tuple[kserver.RunningServer, Path]) -> None:
    proc = kc(cluster, "get", "configmaps", token="no-such-token")
    assert proc.returncode == 1
    assert "You must be logged in to the server (Unauthorized)" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("get", "pods"),
            'pods is forbidden: User "bob" cannot list resource "pods" in API group "" '
            'in the namespace "default"',
        ),
        (
            ("get", "deployments", "-n", "kube-system"),
            'deployments.apps is forbidden: User "bob" cannot list resource "deployments" '
            'in API group "apps" in the namespace "kube-system"',
        ),
        (
            ("get", "namespaces"),
            'namespaces is forbidden: User "bob" cannot list resource "namespaces" in API group "" '
            "at the cluster scope",
        ),
        (
            ("get", "configmap", "x"),
            'configmaps "x" is forbidden: User "bob" cannot get resource "configmaps" in API group "" '
            'in the namespace "default"',
        ),
        (
            ("create", "configmap", "x"),
            'configmaps is forbidden: User "bob" cannot create resource "configmaps" in API group "" '
            'in the namespace "default"',
        ),
        (
            ("delete", "configmap", "x"),
            'configmaps "x" is forbidden: User "bob" cannot delete resource "configmaps" in API group "" '
            'in the namespace "default"',
        ),
    ],
)
def test_forbidden_messages(
    cluster: tuple[kserver.RunningServer, Path], args: tuple[str, ...], message: str
) -> None:
    proc = kc(cluster, *args, token="bob-token")
    assert proc.returncode == 1
    assert message in proc.stderr


def test_forbidden_status_body(cluster: tuple[kserver.RunningServer, Path]) -> None:
    raw = Raw(cluster[0], "bob-token")
    code, body = raw.request("GET", "/api/v1/namespaces/default/pods")
    assert code == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods is forbidden: User "bob" cannot list resource "pods" in API group "" '
        'in the namespace "default"',
        "reason": "Forbidden",
        "details": {"kind": "pods"},
        "code": 403,
    }
    code, body = raw.request("GET", "/apis/apps/v1/namespaces/default/deployments/web/scale")
    assert code == 403
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    assert 'cannot get resource "deployments/scale" in API group "apps"' in body["message"]
    code, body = raw.request("GET", "/metrics")  # non-resource paths: only what system:discovery grants
    assert (code, body["message"]) == (403, 'forbidden: User "bob" cannot get path "/metrics"')
    assert raw.request("GET", "/version")[0] == 200
    assert raw.request("GET", "/apis")[0] == 200


def test_role_and_cluster_role_bindings(cluster: tuple[kserver.RunningServer, Path]) -> None:
    assert (
        kc(cluster, "auth", "can-i", "list", "pods", "-n", "rb", token="alice-token").stdout.strip() == "no"
    )
    admin(cluster, "create", "namespace", "rb")
    admin(cluster, "create", "rolebinding", "alice-view", "--clusterrole=view", "--user=alice", "-n", "rb")
    assert (
        kc(cluster, "auth", "can-i", "list", "pods", "-n", "rb", token="alice-token").stdout.strip() == "yes"
    )
    assert kc(cluster, "get", "pods", "-n", "rb", token="alice-token").returncode == 0
    # bound in "rb" only, and view does not write
    assert kc(cluster, "auth", "can-i", "list", "pods", "-n", "default", token="alice-token").returncode == 1
    assert (
        kc(cluster, "auth", "can-i", "create", "configmaps", "-n", "rb", token="alice-token").returncode == 1
    )
    # a Role of its own, bound to a group alice is in, with resourceNames
    admin(
        cluster,
        "create",
        "role",
        "one-cm",
        "--verb=get,patch",
        "--resource=configmaps",
        "--resource-name=settings",
        "-n",
        "rb",
    )
    admin(cluster, "create", "rolebinding", "devs-one-cm", "--role=one-cm", "--group=devs", "-n", "rb")
    admin(cluster, "create", "configmap", "settings", "-n", "rb", "--from-literal=a=1")
    assert kc(cluster, "label", "cm", "settings", "x=y", "-n", "rb", token="alice-token").returncode == 0
    assert (
        kc(cluster, "auth", "can-i", "patch", "configmaps/other", "-n", "rb", token="alice-token").returncode
        == 1
    )
    # cluster-wide through a ClusterRoleBinding
    assert kc(cluster, "get", "namespaces", token="alice-token").returncode == 1
    admin(cluster, "create", "clusterrole", "ns-reader", "--verb=get,list,watch", "--resource=namespaces")
    admin(cluster, "create", "clusterrolebinding", "qa-ns-reader", "--clusterrole=ns-reader", "--group=qa")
    assert "rb" in kc(cluster, "get", "namespaces", "-o", "name", token="alice-token", check=True).stdout
    # removing the binding takes the right away again
    admin(cluster, "delete", "clusterrolebinding", "qa-ns-reader")
    assert kc(cluster, "get", "namespaces", token="alice-token").returncode == 1


def test_system_roles_and_aggregation(cluster: tuple[kserver.RunningServer, Path]) -> None:
    names = admin(cluster, "get", "clusterroles", "-o", "name").stdout.split()
    for role in ("cluster-admin", "admin", "edit", "view"):
        assert f"clusterrole.rbac.authorization.k8s.io/{role}" in names
    view = json.loads(admin(cluster, "get", "clusterrole", "view", "-o", "json").stdout)
    assert view["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]
    }
    assert any("pods" in r.get("resources", []) for r in view["rules"])  # aggregated rules written back
    admin(cluster, "create", "namespace", "agg")
    admin(cluster, "create", "rolebinding", "bob-view", "--clusterrole=view", "--user=bob", "-n", "agg")
    admin(cluster, "create", "rolebinding", "carol-edit", "--clusterrole=edit", "--user=carol", "-n", "agg")
    assert kc(cluster, "auth", "can-i", "list", "leases", "-n", "agg", token="bob-token").returncode == 0
    assert kc(cluster, "auth", "can-i", "list", "secrets", "-n", "agg", token="bob-token").returncode == 1
    assert (
        kc(cluster, "auth", "can-i", "create", "deployments", "-n", "agg", token="carol-token").returncode
        == 0
    )
    assert kc(cluster, "auth", "can-i", "create", "roles", "-n", "agg", token="carol-token").returncode == 1
    # a role labelled aggregate-to-view extends view (and so edit and admin) at once
    admin(cluster, "create", "clusterrole", "secret-lister", "--verb=list", "--resource=secrets")
    admin(
        cluster, "label", "clusterrole", "secret-lister", "rbac.authorization.k8s.io/aggregate-to-view=true"
    )
    assert kc(cluster, "auth", "can-i", "list", "secrets", "-n", "agg", token="bob-token").returncode == 0
    assert kc(cluster, "auth", "can-i", "list", "secrets", "-n", "agg", token="carol-token").returncode == 0


def test_can_i_list(cluster: tuple[kserver.RunningServer, Path]) -> None:
    admin(cluster, "create", "namespace", "lst")
    admin(cluster, "create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps", "-n", "lst")
    admin(cluster, "create", "rolebinding", "bob-cm", "--role=cm-reader", "--user=bob", "-n", "lst")
    out = kc(cluster, "auth", "can-i", "--list", "-n", "lst", token="bob-token", check=True).stdout
    rows = [line.split() for line in out.splitlines()]
    assert ["configmaps", "[]", "[]", "[get", "list]"] in rows
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    assert ["[/version]", "[]", "[get]"] in rows
    out = kc(cluster, "auth", "can-i", "--list", check=True).stdout  # the admin: everything
    assert ["*.*", "[]", "[]", "[*]"] in [line.split() for line in out.splitlines()]


def test_service_account_tokens(cluster: tuple[kserver.RunningServer, Path]) -> None:
    admin(cluster, "create", "serviceaccount", "robot")
    admin(
        cluster, "create", "rolebinding", "robot-edit", "--clusterrole=edit", "--serviceaccount=default:robot"
    )
    token = admin(cluster, "create", "token", "robot").stdout.strip()
    assert kc(cluster, "create", "configmap", "robot-made", "--from-literal=a=1", token=token).returncode == 0
    proc = kc(
        cluster, "get", "cm", "robot-made", "-o", "json", "--show-managed-fields", token=token, check=True
    )
    assert json.loads(proc.stdout)["metadata"]["managedFields"][0]["manager"] == "kubectl-create"
    assert kc(cluster, "get", "secrets", "-n", "kube-system", token=token).returncode == 1
    # too short a duration is refused, as the real TokenRequest validation does
    short = kc(cluster, "create", "token", "robot", "--duration=5m")
    assert short.returncode == 1 and "may not specify a duration less than 10 minutes" in short.stderr
    missing = kc(cluster, "create", "token", "nobody")
    assert missing.returncode == 1 and 'serviceaccounts "nobody" not found' in missing.stderr
    # bound to the ServiceAccount: deleting it (or recreating it, another uid) ends the token
    admin(cluster, "delete", "serviceaccount", "robot")
    assert "Unauthorized" in kc(cluster, "get", "configmaps", token=token).stderr
    admin(cluster, "create", "serviceaccount", "robot")
    assert "Unauthorized" in kc(cluster, "get", "configmaps", token=token).stderr
    fresh = admin(cluster, "create", "token", "robot").stdout.strip()
    assert kc(cluster, "get", "configmaps", token=fresh).returncode == 0


def test_impersonation(cluster: tuple[kserver.RunningServer, Path]) -> None:
    # the admin may impersonate anyone, and is then refused what they are refused
    proc = kc(cluster, "get", "pods", "--as", "dave")
    assert 'User "dave" cannot list resource "pods"' in proc.stderr
    assert whoami(cluster, "--as", "dave", "--as-group", "ops") == {
        "username": "dave",
        "groups": ["ops", "system:authenticated"],
    }
    sa = whoami(cluster, "--as", "system:serviceaccount:default:anyone")
    assert sa["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:default",
        "system:authenticated",
    ]
    # others need the impersonate verb, on users, groups or serviceaccounts, per name
    proc = kc(cluster, "get", "pods", "--as", "dave", token="carol-token")
    assert proc.returncode == 1
    assert (
        'users "dave" is forbidden: User "carol" cannot impersonate resource "users" in API group "" '
        "at the cluster scope" in proc.stderr
    )
    admin(
        cluster,
        "create",
        "clusterrole",
        "impersonate-dave",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=dave",
    )
    admin(
        cluster,
        "create",
        "clusterrolebinding",
        "impersonators",
        "--clusterrole=impersonate-dave",
        "--group=impersonators",
    )
    assert whoami(cluster, "--as", "dave", token="carol-token")["username"] == "dave"
    proc = kc(cluster, "get", "cm", "--as", "dave", "--as-group", "ops", token="carol-token")
    assert 'groups "ops" is forbidden: User "carol" cannot impersonate resource "groups"' in proc.stderr
    proc = kc(cluster, "get", "cm", "--as", "erin", token="carol-token")
    assert 'users "erin" is forbidden' in proc.stderr
    # impersonating a user with rights grants them
    admin(cluster, "create", "rolebinding", "dave-view", "--clusterrole=view", "--user=dave")
    assert kc(cluster, "get", "pods", "--as", "dave", token="carol-token").returncode == 0


def test_subject_access_review(cluster: tuple[kserver.RunningServer, Path]) -> None:
    raw = Raw(cluster[0])
    admin(cluster, "create", "namespace", "sar")
    admin(cluster, "create", "rolebinding", "qa-edit", "--clusterrole=edit", "--group=qa", "-n", "sar")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "zoe",
            "groups": ["qa"],
            "resourceAttributes": {"namespace": "sar", "verb": "create", "resource": "configmaps"},
        },
    }
    code, body = raw.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    assert (code, body["status"]) == (201, {"allowed": True})
    review["spec"]["groups"] = []
    assert raw.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)[1]["status"] == {
        "allowed": False
    }
    # only those granted it may ask about others
    code, body = Raw(cluster[0], "bob-token").request(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review
    )
    assert code == 403
    assert body["message"] == (
        'subjectaccessreviews.authorization.k8s.io is forbidden: User "bob" cannot create resource '
        '"subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope'
    )


def test_create_on_apply_needs_create(cluster: tuple[kserver.RunningServer, Path]) -> None:
    """apply_test.go TestCreateOnApplyFailsWithForbidden: patch alone does not create."""
    admin(cluster, "create", "namespace", "apply")
    admin(cluster, "create", "role", "patcher", "--verb=get,patch", "--resource=configmaps", "-n", "apply")
    admin(cluster, "create", "rolebinding", "bob-patch", "--role=patcher", "--user=bob", "-n", "apply")
    raw = Raw(cluster[0], "bob-token")
    path = "/api/v1/namespaces/apply/configmaps/made?fieldManager=bob"
    cm = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"made"},"data":{"a":"1"}}'
    code, body = raw.request("PATCH", path, cm, "application/apply-patch+yaml")
    assert code == 403
    assert body["message"] == (
        'configmaps "made" is forbidden: User "bob" cannot create resource "configmaps" in API group "" '
        'in the namespace "apply"'
    )
    admin(cluster, "create", "configmap", "made", "-n", "apply")
    assert raw.request("PATCH", path, cm, "application/apply-patch+yaml")[0] == 200


def test_no_escalation_through_roles_or_bindings(cluster: tuple[kserver.RunningServer, Path]) -> None:
    """kubernetes pkg/registry/rbac/validation ConfirmNoEscalation and the escalate/bind verbs
    (test/integration/auth/rbac_test.go TestRBAC "escalation" cases)."""
    admin(cluster, "create", "namespace", "esc")
    admin(cluster, "create", "rolebinding", "alice-admin", "--clusterrole=admin", "--user=alice", "-n", "esc")
    # within what admin holds: fine
    kc(
        cluster,
        "create",
        "role",
        "reader",
        "--verb=get",
        "--resource=secrets",
        "-n",
        "esc",
        token="alice-token",
        check=True,
    )
    kc(
        cluster,
        "create",
        "rolebinding",
        "bob-view",
        "--clusterrole=view",
        "--user=bob",
        "-n",
        "esc",
        token="alice-token",
        check=True,
    )
    # beyond it: refused, naming what is not held
    proc = kc(
        cluster,
        "create",
        "role",
        "node-reader",
        "--verb=get",
        "--resource=nodes",
        "-n",
        "esc",
        token="alice-token",
    )
    assert proc.returncode == 1
    assert (
        'roles.rbac.authorization.k8s.io "node-reader" is forbidden: user "alice" '
        '(groups=["devs" "qa" "system:authenticated"]) is attempting to grant RBAC permissions '
        "not currently held:"
        in proc.stderr
    )
    assert '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}' in proc.stderr
    proc = kc(
        cluster,
        "create",
        "rolebinding",
        "bob-root",
        "--clusterrole=cluster-admin",
        "--user=bob",
        "-n",
        "esc",
        token="alice-token",
    )
    assert (
        proc.returncode == 1 and "is attempting to grant RBAC permissions not currently held" in proc.stderr
    )
    # `bind` on that role, or `escalate` on roles, lifts the check
    admin(
        cluster,
        "create",
        "role",
        "may-bind",
        "--verb=bind",
        "--resource=clusterroles",
        "--resource-name=cluster-admin",
        "-n",
        "esc",
    )
    admin(cluster, "create", "rolebinding", "alice-may-bind", "--role=may-bind", "--user=alice", "-n", "esc")
    kc(
        cluster,
        "create",
        "rolebinding",
        "bob-root",
        "--clusterrole=cluster-admin",
        "--user=bob",
        "-n",
        "esc",
        token="alice-token",
        check=True,
    )
    admin(cluster, "create", "role", "may-escalate", "--verb=escalate", "--resource=roles", "-n", "esc")
    admin(
        cluster,
        "create",
        "rolebinding",
        "alice-may-escalate",
        "--role=may-escalate",
        "--user=alice",
        "-n",
        "esc",
    )
    kc(
        cluster,
        "create",
        "role",
        "node-reader",
        "--verb=get",
        "--resource=nodes",
        "-n",
        "esc",
        token="alice-token",
        check=True,
    )
