"""Role-based access control, as kube-apiserver's RBAC authorizer: a request's attributes checked
against the rules of the Roles and ClusterRoles bound to the identity (RoleBindings in the
request's namespace, ClusterRoleBindings everywhere), ClusterRole aggregation, the bootstrap roles
kubectl users expect, the rules review (`kubectl auth can-i --list`), escalation prevention (which
rules a writer does not hold) and the 403 wordings.

Pure: the roles and bindings come from a `Policy` the caller builds from the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubesim.authn import MASTERS, SA_PREFIX, Identity
from kubesim.errors import ApiError, qualified

GROUP = "rbac.authorization.k8s.io"
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


@dataclass(frozen=True)
class Attributes:
    """What a request does (authorizer.Attributes): a resource request or a non-resource path."""

    verb: str
    resource: str = ""
    group: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # non-resource requests only

    @property
    def is_resource(self) -> bool:
        return not self.path


@dataclass
class Policy:
    """The RBAC objects in force: Roles by (namespace, name), ClusterRoles by name, bindings."""

    roles: dict[tuple[str, str], dict[str, Any]]
    cluster_roles: dict[str, dict[str, Any]]
    role_bindings: list[dict[str, Any]]
    cluster_role_bindings: list[dict[str, Any]]

    def cluster_role_rules(self, name: str, seen: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """A ClusterRole's rules; an aggregated one's are those of the roles its selectors match."""
        role = self.cluster_roles.get(name)
        if role is None or name in seen:
            return []
        agg = role.get("aggregationRule")
        if not isinstance(agg, dict):
            return rules_of(role)
        out: list[dict[str, Any]] = []
        for sel in agg.get("clusterRoleSelectors") or []:
            for other, obj in sorted(self.cluster_roles.items()):
                if other != name and _labels_match(sel, obj):
                    out += self.cluster_role_rules(other, seen | {name})
        return out

    def rules_for(self, who: Identity, namespace: str) -> list[dict[str, Any]]:
        """Every rule that applies to `who` in `namespace` ("" = cluster scope only)."""
        out: list[dict[str, Any]] = []
        for b in self.cluster_role_bindings:
            if _binds(b, who, ""):
                out += self._ref_rules(b, "")
        if namespace:
            for b in self.role_bindings:
                if (b.get("metadata") or {}).get("namespace") == namespace and _binds(b, who, namespace):
                    out += self._ref_rules(b, namespace)
        return out

    def _ref_rules(self, binding: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            return self.cluster_role_rules(str(ref.get("name", "")))
        if ref.get("kind") == "Role" and namespace:
            return rules_of(self.roles.get((namespace, str(ref.get("name", "")))) or {})
        return []


def rules_of(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in role.get("rules") or [] if isinstance(r, dict)]


def _labels_match(selector: Any, obj: dict[str, Any]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions) against an object's labels."""
    if not isinstance(selector, dict):
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        present = key in labels
        if (op == "In" and labels.get(key) not in values) or (
            op == "NotIn" and present and labels.get(key) in values
        ):
            return False
        if (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True  # an empty selector selects every role, as metav1.LabelSelectorAsSelector


def _binds(binding: dict[str, Any], who: Identity, namespace: str) -> bool:
    for s in binding.get("subjects") or []:
        if not isinstance(s, dict):
            continue
        kind, name = s.get("kind"), s.get("name")
        if kind == "User" and name == who.user:
            return True
        if kind == "Group" and name in who.groups:
            return True
        if kind == "ServiceAccount":
            ns = s.get("namespace") or namespace
            if who.user == f"{SA_PREFIX}{ns}:{name}":
                return True
    return False


def _has(values: Any, value: str) -> bool:
    return isinstance(values, list) and ("*" in values or value in values)


def rule_allows(rule: dict[str, Any], a: Attributes) -> bool:
    verbs = rule.get("verbs")
    if not _has(verbs, a.verb):
        return False
    if not a.is_resource:
        for url in rule.get("nonResourceURLs") or []:
            if url == a.path or url == "*" or (url.endswith("*") and a.path.startswith(url[:-1])):
                return True
        return False
    if not _has(rule.get("apiGroups"), a.group):
        return False
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resources = rule.get("resources")
    if not isinstance(resources, list):
        return False
    if not (
        "*" in resources or resource in resources or (a.subresource and f"*/{a.subresource}" in resources)
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def allowed(policy: Policy, who: Identity, a: Attributes) -> bool:
    if MASTERS in who.groups:
        return True
    return any(rule_allows(r, a) for r in policy.rules_for(who, a.namespace if a.is_resource else ""))


def forbidden(who: Identity, a: Attributes) -> ApiError:
    """The 403 kube-apiserver answers, word for word."""
    if not a.is_resource:
        return ApiError(403, "Forbidden", f'forbidden: User "{who.user}" cannot {a.verb} path "{a.path}"')
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    why = f'User "{who.user}" cannot {a.verb} resource "{resource}" in API group "{a.group}" {scope}'
    what = qualified(a.resource, a.group)
    message = f'{what} "{a.name}" is forbidden: {why}' if a.name else f"{what} is forbidden: {why}"
    return ApiError(403, "Forbidden", message, a.name, a.group, a.resource)


def _rule_text(r: dict[str, Any]) -> str:
    """A rule as kube-apiserver prints the ones a user may not grant."""
    parts = []
    for key, label in (
        ("apiGroups", "APIGroups"),
        ("resources", "Resources"),
        ("resourceNames", "ResourceNames"),
        ("nonResourceURLs", "NonResourceURLs"),
        ("verbs", "Verbs"),
    ):
        if r.get(key):
            parts.append(f"{label}:[{' '.join(json.dumps(str(v)) for v in r[key])}]")
    return "{" + ", ".join(parts) + "}"


def _atoms(r: dict[str, Any]) -> list[Attributes]:
    """A rule broken into single requests (`*` kept literal: only a `*` rule covers it)."""
    out = []
    for verb in r.get("verbs") or []:
        for url in r.get("nonResourceURLs") or []:
            out.append(Attributes(str(verb), path=str(url)))
        for group in r.get("apiGroups") or []:
            for res in r.get("resources") or []:
                resource, _, sub = str(res).partition("/")
                for name in r.get("resourceNames") or [""]:
                    out.append(Attributes(str(verb), resource, str(group), sub, name=str(name)))
    return out


FULL_AUTHORITY = [
    {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
    {"verbs": ["*"], "nonResourceURLs": ["*"]},
]


def not_held(held: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules of `wanted` that `held` does not cover (rbac validation.ConfirmNoEscalation)."""
    return [r for r in wanted if not all(any(rule_allows(h, a) for h in held) for a in _atoms(r))]


def escalation(who: Identity, what: str, name: str, missing: list[dict[str, Any]]) -> ApiError:
    """The 403 for granting what one does not hold."""
    groups = "[" + " ".join(json.dumps(g) for g in who.groups) + "]"
    rules = "\n".join(_rule_text(r) for r in missing)
    message = (
        f'{what} "{name}" is forbidden: user "{who.user}" (groups={groups}) is attempting to grant '
        f"RBAC permissions not currently held:\n{rules}"
    )
    resource, _, group = what.partition(".")
    return ApiError(403, "Forbidden", message, name, group, resource)


def rules_review(policy: Policy, who: Identity, namespace: str) -> dict[str, Any]:
    """SelfSubjectRulesReview status: the resource and non-resource rules in `namespace`."""
    if MASTERS in who.groups:
        rules = [
            {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
            {"verbs": ["*"], "nonResourceURLs": ["*"]},
        ]
    else:
        rules = policy.rules_for(who, namespace)
    resource_rules, non_resource = [], []
    for r in rules:
        if r.get("nonResourceURLs"):
            non_resource.append(
                {"verbs": list(r.get("verbs") or []), "nonResourceURLs": list(r["nonResourceURLs"])}
            )
        if r.get("resources"):
            out = {
                "verbs": list(r.get("verbs") or []),
                "apiGroups": list(r.get("apiGroups") or []),
                "resources": list(r["resources"]),
            }
            if r.get("resourceNames"):
                out["resourceNames"] = list(r["resourceNames"])
            resource_rules.append(out)
    return {"resourceRules": resource_rules, "nonResourceRules": non_resource, "incomplete": False}


# --- bootstrap policy ------------------------------------------------------------------------

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _rule(verbs: list[str], groups: list[str], resources: list[str]) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


_VIEW_RULES = [
    _rule(
        _READ,
        [""],
        [
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "pods/log",
            "pods/status",
            "services/status",
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "resourcequotas",
            "resourcequotas/status",
        ],
    ),
    _rule(_READ, [""], ["namespaces"]),
    _rule(
        _READ,
        ["apps"],
        [
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
    ),
    _rule(_READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    _rule(_READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    _rule(_READ, ["coordination.k8s.io"], ["leases"]),
    _rule(_READ, ["node.k8s.io"], ["runtimeclasses"]),
]
_EDIT_RULES = [
    _rule(
        _WRITE,
        [""],
        [
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "secrets",
            "serviceaccounts",
            "services",
        ],
    ),
    _rule(_READ, [""], ["secrets"]),
    _rule(["create"], [""], ["serviceaccounts/token", "pods/exec", "pods/attach", "pods/portforward"]),
    _rule(["impersonate"], [""], ["serviceaccounts"]),
    _rule(
        _WRITE,
        ["apps"],
        [
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
    ),
    _rule(_WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
    _rule(_WRITE, ["batch"], ["cronjobs", "jobs"]),
    _rule(_WRITE, ["coordination.k8s.io"], ["leases"]),
]
_ADMIN_RULES = [
    _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    _rule(_READ + _WRITE, [GROUP], ["rolebindings", "roles"]),
]


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
    }
    return meta


def _role(
    name: str,
    rules: list[dict[str, Any]],
    labels: dict[str, str] | None = None,
    aggregate_from: list[str] | None = None,
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": _meta(name, labels),
        "rules": rules,
    }
    if aggregate_from:
        role["aggregationRule"] = {
            "clusterRoleSelectors": [{"matchLabels": {f"{AGGREGATE}{a}": "true"}} for a in aggregate_from]
        }
        role["rules"] = []
    return role


def _binding(name: str, role: str, groups: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups],
    }


_DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]


def bootstrap() -> list[dict[str, Any]]:
    """The default ClusterRoles and ClusterRoleBindings (k8s.io/kubernetes bootstrappolicy):
    cluster-admin for system:masters, admin/edit/view aggregated from system:aggregate-to-*, and
    the discovery and self-review rights every authenticated user has."""
    self_reviews = _rule(
        ["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]
    )
    return [
        _role("cluster-admin", [_rule(["*"], ["*"], ["*"]), {"verbs": ["*"], "nonResourceURLs": ["*"]}]),
        _role("admin", [], {"kubernetes.io/bootstrapping": "rbac-defaults"}, ["admin"]),
        _role("edit", [], {f"{AGGREGATE}admin": "true"}, ["edit"]),
        _role("view", [], {f"{AGGREGATE}edit": "true"}, ["view"]),
        _role("system:aggregate-to-admin", _ADMIN_RULES, {f"{AGGREGATE}admin": "true"}),
        _role("system:aggregate-to-edit", _EDIT_RULES, {f"{AGGREGATE}edit": "true"}),
        _role("system:aggregate-to-view", _VIEW_RULES, {f"{AGGREGATE}view": "true"}),
        _role(
            "system:basic-user",
            [self_reviews, _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])],
        ),
        _role("system:discovery", [{"verbs": ["get"], "nonResourceURLs": _DISCOVERY_URLS}]),
        _role(
            "system:public-info-viewer",
            [
                {
                    "verbs": ["get"],
                    "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                }
            ],
        ),
        _binding("cluster-admin", "cluster-admin", [MASTERS]),
        _binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _binding("system:discovery", "system:discovery", ["system:authenticated"]),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            ["system:authenticated", "system:unauthenticated"],
        ),
    ]


def aggregated(policy: Policy) -> Iterable[tuple[str, list[dict[str, Any]]]]:
    """(name, rules) of each aggregated ClusterRole whose stored rules differ from its selection
    (what the clusterrole-aggregation controller writes back)."""
    for name, role in sorted(policy.cluster_roles.items()):
        if isinstance(role.get("aggregationRule"), dict):
            rules = policy.cluster_role_rules(name)
            if rules != rules_of(role):
                yield name, rules
