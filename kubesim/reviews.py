"""The create-only APIs that store nothing: access reviews (authorization.k8s.io/v1
SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview),
identity reviews (authentication.k8s.io/v1 SelfSubjectReview, TokenReview) and TokenRequest, the
`token` subresource of a ServiceAccount (`kubectl create token`).

They are what `kubectl auth can-i`, `kubectl auth can-i --list`, `kubectl auth whoami` and
`kubectl create token` call. Each answers 201 with the request echoed and its `status` filled in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubesim import authn, bodies, rbac
from kubesim.access import Gate
from kubesim.authn import Identity
from kubesim.calls import Call, Reply
from kubesim.errors import Cause, bad_request, invalid, method_not_allowed, not_found
from kubesim.rbac import Attributes
from kubesim.resources import ResourceType

AUTHZ = "authorization.k8s.io"
AUTHN = "authentication.k8s.io"
KINDS = {
    (AUTHZ, "selfsubjectaccessreviews"): "SelfSubjectAccessReview",
    (AUTHZ, "subjectaccessreviews"): "SubjectAccessReview",
    (AUTHZ, "localsubjectaccessreviews"): "LocalSubjectAccessReview",
    (AUTHZ, "selfsubjectrulesreviews"): "SelfSubjectRulesReview",
    (AUTHN, "selfsubjectreviews"): "SelfSubjectReview",
    (AUTHN, "tokenreviews"): "TokenReview",
}


def review_target(parts: list[str]) -> tuple[str, str, str] | None:
    """(group, plural, namespace) when the path names one of the review resources."""
    if len(parts) == 4 and parts[0] == "apis" and parts[2] == "v1" and (parts[1], parts[3]) in KINDS:
        return parts[1], parts[3], ""
    if (
        len(parts) == 6
        and parts[:3] == ["apis", AUTHZ, "v1"]
        and parts[3] == "namespaces"
        and parts[5] == "localsubjectaccessreviews"
    ):
        return AUTHZ, parts[5], parts[4]
    return None


def token_target(parts: list[str]) -> tuple[str, str] | None:
    """(namespace, name) when the path is a ServiceAccount's `token` subresource."""
    if (
        len(parts) == 7
        and parts[:3] == ["api", "v1", "namespaces"]
        and parts[4] == "serviceaccounts"
        and parts[6] == "token"
    ):
        return parts[3], parts[5]
    return None


def _body(group: str, kind: str, plural: str, body: bytes, content_type: str) -> dict[str, Any]:
    rtype = ResourceType(group, "v1", kind, plural, kind.lower(), False)
    obj: dict[str, Any] = bodies.read_body(Call(rtype, "", "", "", {}, body, content_type)).obj
    bodies.check_gvk(rtype, obj)
    return obj


def _echo(group: str, kind: str, obj: dict[str, Any], status: dict[str, Any]) -> Reply:
    meta = dict(obj.get("metadata") or {})
    meta["creationTimestamp"] = None
    out: dict[str, Any] = {"kind": kind, "apiVersion": f"{group}/v1", "metadata": meta}
    if "spec" in obj or kind != "SelfSubjectReview":
        out["spec"] = obj.get("spec") or {}
    out["status"] = status
    return Reply(201, out)


def _attributes(spec: dict[str, Any], namespace: str | None = None) -> Attributes:
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(res, dict):
        ns = str(res.get("namespace") or "") if namespace is None else namespace
        return Attributes(
            str(res.get("verb") or ""),
            str(res.get("resource") or ""),
            str(res.get("group") or ""),
            str(res.get("subresource") or ""),
            ns,
            str(res.get("name") or ""),
        )
    if isinstance(non, dict):
        return Attributes(str(non.get("verb") or ""), path=str(non.get("path") or ""))
    raise invalid(
        "SelfSubjectAccessReview",
        AUTHZ,
        "",
        [
            Cause(
                "FieldValueRequired",
                "Required value: exactly one of nonResourceAttributes or "
                "resourceAttributes must be specified",
                "spec.resourceAttributes",
            )
        ],
    )


def _decision(gate: Gate, who: Identity, a: Attributes) -> dict[str, Any]:
    return {"allowed": True} if gate.allows(who, a) else {"allowed": False}


def review(
    gate: Gate, who: Identity, method: str, target: tuple[str, str, str], body: bytes, content_type: str
) -> Reply:
    group, plural, namespace = target
    if method != "POST":
        raise method_not_allowed()
    kind = KINDS[(group, plural)]
    obj = _body(group, kind, plural, body, content_type)
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        raise bad_request("spec must be an object")
    if kind == "SelfSubjectAccessReview":
        return _echo(group, kind, obj, _decision(gate, who, _attributes(spec)))
    if kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
        subject = authn.Identity(
            str(spec.get("user") or ""), tuple(spec.get("groups") or ()), str(spec.get("uid") or "")
        )
        return _echo(group, kind, obj, _decision(gate, subject, _attributes(spec, namespace or None)))
    if kind == "SelfSubjectRulesReview":
        ns = str(spec.get("namespace") or "")
        return _echo(group, kind, obj, rbac.rules_review(gate.policy(), who, ns))
    if kind == "SelfSubjectReview":
        return _echo(group, kind, obj, {"userInfo": who.user_info()})
    found = gate.authenticator.authenticate(f"Bearer {spec.get('token') or ''}")  # TokenReview
    status: dict[str, Any] = {"authenticated": True, "user": found.user_info()} if found else {}
    if found is None:
        status = {"user": {}, "error": "invalid bearer token"}
    return _echo(group, kind, obj, status)


def token_request(
    gate: Gate, method: str, namespace: str, name: str, body: bytes, content_type: str
) -> Reply:
    """Issue a token bound to the ServiceAccount (`kubectl create token`)."""
    if method != "POST":
        raise method_not_allowed()
    obj = _body(AUTHN, "TokenRequest", "tokenrequests", body, content_type)
    uid = gate.service_account_uid(namespace, name)
    if uid is None:
        raise not_found("serviceaccounts", "", name)
    spec = dict(obj.get("spec") or {})
    expiration = spec.get("expirationSeconds")
    if expiration is None:
        expiration = authn.DEFAULT_EXPIRATION
    if not isinstance(expiration, int) or expiration < authn.MIN_EXPIRATION:
        raise invalid(
            "TokenRequest",
            AUTHN,
            name,
            [
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {expiration}: may not specify a duration less than 10 minutes",
                    "spec.expirationSeconds",
                )
            ],
        )
    audiences = [str(a) for a in spec.get("audiences") or []] or list(authn.DEFAULT_AUDIENCES)
    token, exp = authn.issue_token(gate.authenticator.key, namespace, name, uid, audiences, expiration)
    spec.update({"audiences": audiences, "expirationSeconds": expiration})
    spec.setdefault("boundObjectRef", None)
    meta = {**(obj.get("metadata") or {}), "name": name, "namespace": namespace, "creationTimestamp": None}
    stamp = dt.datetime.fromtimestamp(exp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Reply(
        201,
        {
            "kind": "TokenRequest",
            "apiVersion": f"{AUTHN}/v1",
            "metadata": meta,
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": stamp},
        },
    )
