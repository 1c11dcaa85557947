"""Who is asking: bearer tokens to identities, and impersonation.

Three kinds of token, as kube-apiserver's authenticators:

* the admin token `start()` was given (or made up): user ``kubernetes-admin`` in ``system:masters``,
  the group RBAC never refuses;
* a static token file (kube-apiserver's ``--token-auth-file``): CSV lines
  ``token,user,uid,"group1,group2"`` (the groups column optional);
* ServiceAccount tokens issued by the TokenRequest API (``kubectl create token``): JWTs signed by
  kubesim (HS256, a key per state), bound to their ServiceAccount: a token stops working when it
  expires or when its ServiceAccount is deleted or recreated (another uid).

Every identity is also in ``system:authenticated``; ServiceAccounts are
``system:serviceaccount:<ns>:<name>`` in ``system:serviceaccounts`` and
``system:serviceaccounts:<ns>``. Impersonation (``Impersonate-User``, ``Impersonate-Group``,
``Impersonate-Uid``) is checked by the server against RBAC (verb ``impersonate``) before the
impersonated identity replaces the requester's.

Pure apart from reading the token file and the ServiceAccounts it is handed.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADMIN_USER = "kubernetes-admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"
ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",)
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600


@dataclass(frozen=True)
class Identity:
    """An authenticated user (authentication.k8s.io UserInfo)."""

    user: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, hash=False)

    def user_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"username": self.user, "groups": list(self.groups)}
        if self.uid:
            info["uid"] = self.uid
        if self.extra:
            info["extra"] = {k: list(v) for k, v in self.extra.items()}
        return info


class TokenFileError(ValueError):
    """A static token file that cannot be read; the message names the file and line."""


def with_authenticated(
    user: str,
    groups: list[str] | tuple[str, ...],
    uid: str = "",
    extra: dict[str, tuple[str, ...]] | None = None,
) -> Identity:
    gs = tuple(dict.fromkeys([*groups, AUTHENTICATED]))
    return Identity(user, gs, uid, extra or {})


def read_token_file(path: str | Path) -> dict[str, Identity]:
    """kube-apiserver's --token-auth-file format: token,user,uid[,"group1,group2"]."""
    out: dict[str, Identity] = {}
    with open(path, newline="") as f:
        for n, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 3 or not row[0].strip() or not row[1].strip():
                raise TokenFileError(f'{path}:{n}: a line is token,user,uid[,"group1,group2"]')
            groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
            out[row[0].strip()] = with_authenticated(row[1].strip(), groups, row[2].strip())
    return out


def service_account_identity(namespace: str, name: str, uid: str) -> Identity:
    return with_authenticated(
        f"{SA_PREFIX}{namespace}:{name}",
        ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
        uid,
    )


# --- ServiceAccount tokens (JWT, HS256) ----------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(
    key: bytes,
    namespace: str,
    name: str,
    sa_uid: str,
    audiences: list[str],
    expiration: int,
    now: float | None = None,
) -> tuple[str, int]:
    """A signed ServiceAccount token and its expiry (epoch seconds)."""
    issued = int(now if now is not None else time.time())
    exp = issued + expiration
    claims = {
        "aud": audiences,
        "exp": exp,
        "iat": issued,
        "iss": ISSUER,
        "nbf": issued,
        "sub": f"{SA_PREFIX}{namespace}:{name}",
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": sa_uid}},
    }
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = _b64(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}", exp


def verify_token(key: bytes, token: str, now: float | None = None) -> dict[str, Any] | None:
    """The claims of a token kubesim signed that has not expired, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    expected = _b64(hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, parts[2]):
        return None
    try:
        claims: dict[str, Any] = json.loads(_unb64(parts[1]))
    except ValueError:
        return None
    t = now if now is not None else time.time()
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= t:
        return None
    return claims


# --- the authenticator -----------------------------------------------------------------------


class Authenticator:
    """Bearer token -> Identity. `service_account` looks a ServiceAccount up as (uid or None)."""

    def __init__(
        self,
        admin_token: str,
        key: bytes,
        static: dict[str, Identity] | None = None,
        service_account: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self.admin_token = admin_token
        self.key = key
        self.static = dict(static or {})
        self.service_account = service_account or (lambda ns, name: None)
        self._admin = with_authenticated(ADMIN_USER, [MASTERS])

    def authenticate(self, authorization: str) -> Identity | None:
        scheme, _, given = authorization.partition(" ")
        token = given.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return self._admin
        found = self.static.get(token)
        if found is not None:
            return found
        if token.count(".") == 2:
            return self._service_account_token(token)
        return None

    def _service_account_token(self, token: str) -> Identity | None:
        claims = verify_token(self.key, token)
        if claims is None:
            return None
        k8s = claims.get("kubernetes.io") or {}
        ns, sa = k8s.get("namespace"), (k8s.get("serviceaccount") or {})
        if not isinstance(ns, str) or not isinstance(sa, dict):
            return None
        uid = self.service_account(ns, str(sa.get("name", "")))
        if uid is None or uid != sa.get("uid"):
            return None  # the ServiceAccount is gone, or was recreated
        return service_account_identity(ns, str(sa.get("name")), uid)


def impersonation_request(headers: Callable[[str], list[str]]) -> tuple[str, list[str], str] | None:
    """(user, groups, uid) the Impersonate-* headers ask for, or None when there are none."""
    users = headers("Impersonate-User")
    groups = headers("Impersonate-Group")
    uids = headers("Impersonate-Uid")
    if not users and not groups and not uids:
        return None
    return (users[0] if users else ""), groups, (uids[0] if uids else "")
