"""The server's gate: who is asking (`kubesim.authn`), whom they act as (impersonation) and whether
they may (`kubesim.rbac`), for every request before it reaches a verb.

A request's attributes follow kube-apiserver's RequestInfo: GET of a named object is `get`, of a
collection `list` (`watch` with `?watch=true`), POST `create`, PUT `update`, PATCH `patch`, DELETE
`delete` or `deletecollection`; any other path (discovery, OpenAPI, /version, /metrics) is a
non-resource request for its path with the lower-cased method. The policy (Roles, ClusterRoles and
their bindings) is rebuilt from the store only when one of them changed; the admin token's
`system:masters` never waits for it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubesim import authn, rbac
from kubesim.api import Cluster
from kubesim.authn import SA_PREFIX, Authenticator, Identity
from kubesim.errors import ApiError, unauthorized
from kubesim.rbac import Attributes, Policy
from kubesim.resources import ResourceType

RBAC_KEYS = (
    "roles.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
)
_COLLECTION_VERBS = {"GET": "list", "HEAD": "list", "POST": "create", "DELETE": "deletecollection"}
_OBJECT_VERBS = {"GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def resource_verb(method: str, named: bool, watch: bool) -> str:
    if not named:
        verb = _COLLECTION_VERBS.get(method, method.lower())
        return "watch" if watch and verb == "list" else verb
    return _OBJECT_VERBS.get(method, method.lower())


def signing_key(state: str | Path, tls_dir: Path) -> bytes:
    """The key ServiceAccount tokens are signed with: random per in-memory state, else kept (0600)
    beside the TLS pair, so tokens survive a restart on the same state."""
    if str(state) == ":memory:":
        return secrets.token_bytes(32)
    path = tls_dir / f"{Path(state).name}-serviceaccount.key"
    if path.exists():
        return path.read_bytes()
    key = secrets.token_bytes(32)
    path.touch(mode=0o600, exist_ok=True)
    path.write_bytes(key)
    return key


class Gate:
    """Authentication, impersonation and authorization against one cluster's store."""

    def __init__(
        self, cluster: Cluster, admin_token: str, key: bytes, static: dict[str, Identity] | None = None
    ) -> None:
        self.cluster = cluster
        self.authenticator = Authenticator(admin_token, key, static, self.service_account_uid)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[tuple[int, int], ...], Policy] | None = None

    def service_account_uid(self, namespace: str, name: str) -> str | None:
        entry = self.cluster.store.get("serviceaccounts", namespace, name)
        return None if entry is None else str(entry.obj.get("metadata", {}).get("uid", ""))

    def policy(self) -> Policy:
        store = self.cluster.store
        buckets = [store.items(key) for key in RBAC_KEYS]
        stamp = tuple((len(b), max((e.rv for e in b), default=0)) for b in buckets)
        with self._lock:
            if self._cached is not None and self._cached[0] == stamp:
                return self._cached[1]
            roles, cluster_roles, role_bindings, cluster_role_bindings = ([e.obj for e in b] for b in buckets)
            policy = Policy(
                {(r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in roles},
                {r["metadata"]["name"]: r for r in cluster_roles},
                role_bindings,
                cluster_role_bindings,
            )
            self._cached = (stamp, policy)
            return policy

    def identify(self, authorization: str, header: Callable[[str], list[str]]) -> Identity:
        """The identity a request acts as: its token's, or the one it may impersonate (401/403)."""
        who = self.authenticator.authenticate(authorization)
        if who is None:
            raise unauthorized()
        asked = authn.impersonation_request(header)
        return who if asked is None else self.impersonate(who, *asked)

    def impersonate(self, who: Identity, user: str, groups: list[str], uid: str) -> Identity:
        if not user:
            raise ApiError(
                500,
                "InternalError",
                "Internal error occurred: requested "
                f"{[*groups, *([uid] if uid else [])]} without impersonating a user",
            )
        if user.startswith(SA_PREFIX) and user.count(":") == 3:
            ns, name = user[len(SA_PREFIX) :].split(":")
            self.check(who, Attributes("impersonate", "serviceaccounts", namespace=ns, name=name))
            implied = ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
        else:
            self.check(who, Attributes("impersonate", "users", name=user))
            implied = []
        for g in groups:
            self.check(who, Attributes("impersonate", "groups", name=g))
        if uid:
            self.check(who, Attributes("impersonate", "uids", name=uid))
        return authn.with_authenticated(user, groups or implied, uid)

    def allows(self, who: Identity, a: Attributes) -> bool:
        return authn.MASTERS in who.groups or rbac.allowed(self.policy(), who, a)

    def check(self, who: Identity, a: Attributes) -> None:
        if not self.allows(who, a):
            raise rbac.forbidden(who, a)

    def write_check(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        """Escalation prevention (`Cluster.write_check`): a Role or ClusterRole may only hold rules
        its writer holds, and a binding may only point at a role whose rules its writer holds,
        unless they may `escalate` (roles) or `bind` (bindings). Writes outside a request (the
        controllers, bootstrap) are not checked."""
        who: Identity | None = getattr(_current, "who", None)
        if who is None or authn.MASTERS in who.groups or rtype.group != rbac.GROUP:
            return
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        what = f"{rtype.plural}.{rtype.group}"
        policy = self.policy()
        if rtype.kind in ("Role", "ClusterRole"):
            if self.allows(who, Attributes("escalate", rtype.plural, rtype.group, namespace=ns, name=name)):
                return
            # an aggregated ClusterRole can come to hold anything: only full authority may write one
            wanted = rbac.FULL_AUTHORITY if obj.get("aggregationRule") else rbac.rules_of(obj)
            missing = rbac.not_held(policy.rules_for(who, ns), wanted)
        elif rtype.kind in ("RoleBinding", "ClusterRoleBinding"):
            ref = obj.get("roleRef") or {}
            kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
            plural = "clusterroles" if kind == "ClusterRole" else "roles"
            if self.allows(who, Attributes("bind", plural, rbac.GROUP, namespace=ns, name=ref_name)):
                return
            if kind == "ClusterRole":
                granted = policy.cluster_role_rules(ref_name)
            else:
                granted = rbac.rules_of(policy.roles.get((ns, ref_name)) or {})
            missing = rbac.not_held(policy.rules_for(who, ns), granted)
        else:
            return
        if missing:
            raise rbac.escalation(who, what, name, missing)


_current = threading.local()


def acting_as(who: Identity | None) -> None:
    """Record the identity the current thread serves (for `Gate.write_check`)."""
    _current.who = who


def bootstrap(cluster: Cluster) -> None:
    """Create the default ClusterRoles and ClusterRoleBindings a state lacks; aggregated roles are
    written with their aggregated rules, as the aggregation controller would."""
    objs = rbac.bootstrap()
    roles = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ClusterRole"}
    policy = Policy({}, roles, [], [])
    for name, rules in rbac.aggregated(policy):
        roles[name]["rules"] = rules
    for obj in objs:
        plural = "clusterroles" if obj["kind"] == "ClusterRole" else "clusterrolebindings"
        rtype = cluster.registry.lookup(rbac.GROUP, "v1", plural)
        assert rtype is not None
        if cluster.store.get(rtype.storage_key, "", obj["metadata"]["name"]) is None:
            cluster.internal_create(rtype, obj, "kube-apiserver")
