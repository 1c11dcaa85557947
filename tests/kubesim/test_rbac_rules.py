"""Tables for the pieces under the RBAC authorizer and the authenticators (no server).

Rule matching follows kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go` (RuleAllows: verbs,
apiGroups, resources with `*` and `*/subresource`, resourceNames, nonResourceURLs with a trailing
`*`) and its tests in `rbac_test.go`; the token file is kube-apiserver's --token-auth-file
(`k8s.io/apiserver/pkg/authentication/token/tokenfile`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubesim import authn, rbac
from kubesim.rbac import Attributes, Policy


def rule(
    verbs: list[str],
    groups: list[str] | None = None,
    resources: list[str] | None = None,
    names: list[str] | None = None,
    urls: list[str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"verbs": verbs}
    if groups is not None:
        out["apiGroups"] = groups
    if resources is not None:
        out["resources"] = resources
    if names is not None:
        out["resourceNames"] = names
    if urls is not None:
        out["nonResourceURLs"] = urls
    return out


RULE_CASES = [
    ("exact", rule(["get"], [""], ["pods"]), Attributes("get", "pods", namespace="ns"), True),
    ("verb differs", rule(["get"], [""], ["pods"]), Attributes("list", "pods"), False),
    ("group differs", rule(["get"], [""], ["deployments"]), Attributes("get", "deployments", "apps"), False),
    ("star verb", rule(["*"], [""], ["pods"]), Attributes("delete", "pods"), True),
    ("star group", rule(["get"], ["*"], ["deployments"]), Attributes("get", "deployments", "apps"), True),
    ("star resource", rule(["get"], ["apps"], ["*"]), Attributes("get", "deployments", "apps"), True),
    (
        "star resource covers subresources",
        rule(["get"], ["apps"], ["*"]),
        Attributes("get", "deployments", "apps", "scale"),
        True,
    ),
    (
        "resource does not cover its subresource",
        rule(["get"], ["apps"], ["deployments"]),
        Attributes("get", "deployments", "apps", "scale"),
        False,
    ),
    (
        "subresource named",
        rule(["get"], ["apps"], ["deployments/scale"]),
        Attributes("get", "deployments", "apps", "scale"),
        True,
    ),
    (
        "star/subresource",
        rule(["get"], ["apps"], ["*/scale"]),
        Attributes("get", "deployments", "apps", "scale"),
        True,
    ),
    (
        "star/subresource not the resource",
        rule(["get"], ["apps"], ["*/scale"]),
        Attributes("get", "deployments", "apps"),
        False,
    ),
    (
        "resourceNames match",
        rule(["get"], [""], ["configmaps"], ["a"]),
        Attributes("get", "configmaps", name="a"),
        True,
    ),
    (
        "resourceNames other",
        rule(["get"], [""], ["configmaps"], ["a"]),
        Attributes("get", "configmaps", name="b"),
        False,
    ),
    (
        "resourceNames never allow list",
        rule(["list"], [""], ["configmaps"], ["a"]),
        Attributes("list", "configmaps"),
        False,
    ),
    ("non-resource exact", rule(["get"], urls=["/version"]), Attributes("get", path="/version"), True),
    ("non-resource prefix", rule(["get"], urls=["/apis/*"]), Attributes("get", path="/apis/apps/v1"), True),
    ("non-resource star", rule(["get"], urls=["*"]), Attributes("get", path="/metrics"), True),
    ("non-resource other", rule(["get"], urls=["/version"]), Attributes("get", path="/metrics"), False),
    (
        "resource rule never allows a path",
        rule(["get"], ["*"], ["*"]),
        Attributes("get", path="/version"),
        False,
    ),
    ("path rule never allows a resource", rule(["get"], urls=["*"]), Attributes("get", "pods"), False),
]


@pytest.mark.parametrize(("name", "r", "a", "want"), RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule_allows(name: str, r: dict[str, Any], a: Attributes, want: bool) -> None:
    assert rbac.rule_allows(r, a) is want


def _crole(
    name: str,
    rules: list[dict[str, Any]],
    labels: dict[str, str] | None = None,
    selectors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels or {}},
        "rules": rules,
    }
    if selectors is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return obj


def _binding(
    kind: str, role_kind: str, role: str, subjects: list[dict[str, str]], ns: str = ""
) -> dict[str, Any]:
    meta = {"name": f"{role}-b", **({"namespace": ns} if ns else {})}
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"kind": role_kind, "name": role},
        "subjects": subjects,
    }


def test_aggregation_selectors_and_bindings() -> None:
    pods = rule(["get"], [""], ["pods"])
    cms = rule(["list"], [""], ["configmaps"])
    policy = Policy(
        {
            ("ns", "local"): {
                "kind": "Role",
                "metadata": {"name": "local", "namespace": "ns"},
                "rules": [rule(["delete"], [""], ["secrets"])],
            }
        },
        {
            "a": _crole("a", [pods], {"agg": "yes", "tier": "x"}),
            "b": _crole("b", [cms], {"agg": "yes", "tier": "y"}),
            "c": _crole("c", [rule(["*"], ["*"], ["*"])], {"agg": "no"}),
            "by-label": _crole("by-label", [], selectors=[{"matchLabels": {"agg": "yes"}}]),
            "by-expr": _crole(
                "by-expr",
                [],
                selectors=[{"matchExpressions": [{"key": "tier", "operator": "In", "values": ["y"]}]}],
            ),
            "nested": _crole("nested", [], selectors=[{"matchLabels": {"outer": "1"}}]),
            "inner": _crole("inner", [], {"outer": "1"}, selectors=[{"matchLabels": {"tier": "x"}}]),
        },
        [
            _binding("RoleBinding", "ClusterRole", "by-label", [{"kind": "User", "name": "u"}], "ns"),
            _binding("RoleBinding", "Role", "local", [{"kind": "Group", "name": "g"}], "ns"),
            _binding(
                "RoleBinding", "ClusterRole", "by-expr", [{"kind": "ServiceAccount", "name": "sa"}], "ns"
            ),
        ],
        [_binding("ClusterRoleBinding", "ClusterRole", "nested", [{"kind": "User", "name": "n"}])],
    )
    assert policy.cluster_role_rules("by-label") == [pods, cms]
    assert policy.cluster_role_rules("by-expr") == [cms]
    assert policy.cluster_role_rules("nested") == [pods]
    u = authn.with_authenticated("u", [])
    assert rbac.allowed(policy, u, Attributes("get", "pods", namespace="ns"))
    assert not rbac.allowed(policy, u, Attributes("get", "pods", namespace="other"))
    g = authn.with_authenticated("someone", ["g"])
    assert rbac.allowed(policy, g, Attributes("delete", "secrets", namespace="ns"))
    sa = authn.service_account_identity("ns", "sa", "uid")
    assert rbac.allowed(policy, sa, Attributes("list", "configmaps", namespace="ns"))
    assert not rbac.allowed(policy, sa, Attributes("get", "pods", namespace="ns"))
    n = authn.with_authenticated("n", [])
    assert rbac.allowed(policy, n, Attributes("get", "pods", namespace="anywhere"))
    assert rbac.allowed(policy, n, Attributes("get", "pods"))
    masters = authn.with_authenticated("m", [authn.MASTERS])
    assert rbac.allowed(policy, masters, Attributes("escalate", "anything", "any.group"))


def test_token_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('# comment\nt1,alice,1,"a,b"\n\nt2,bob,2\n')
    found = authn.read_token_file(path)
    assert found["t1"] == authn.Identity("alice", ("a", "b", authn.AUTHENTICATED), "1")
    assert found["t2"] == authn.Identity("bob", (authn.AUTHENTICATED,), "2")
    path.write_text("t3,only-two\n")
    with pytest.raises(authn.TokenFileError, match=r"tokens\.csv:1"):
        authn.read_token_file(path)


def test_service_account_tokens_are_signed_bound_and_expire() -> None:
    key = b"k" * 32
    uids = {("ns", "sa"): "uid-1"}
    auth = authn.Authenticator("admin", key, {}, lambda ns, name: uids.get((ns, name)))
    token, exp = authn.issue_token(key, "ns", "sa", "uid-1", ["aud"], 600)
    who = auth.authenticate(f"Bearer {token}")
    assert who is not None and who.user == "system:serviceaccount:ns:sa" and who.uid == "uid-1"
    head, body, sig = token.split(".")
    assert auth.authenticate(f"Bearer {head}.{body}.{sig[:-2]}AA") is None  # tampered
    assert authn.verify_token(key, token, now=exp + 1) is None  # expired
    assert authn.verify_token(b"other" * 8, token) is None  # another state's key
    uids[("ns", "sa")] = "uid-2"  # recreated
    assert auth.authenticate(f"Bearer {token}") is None
    assert auth.authenticate("Basic admin") is None
    assert auth.authenticate("Bearer admin") is not None
