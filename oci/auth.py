"""Registry credentials and the auth protocol pieces that need no I/O.

- `Credentials`: an explicit username + password (e.g. from `--password-stdin`), or what the Docker
  config file holds for a registry.
- `DockerConfig`: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. `auths` entries with
  `auth` (base64 `user:password`) or `username`/`password` are used. Credential helpers
  (`credHelpers`, `credsStore`) and `identitytoken` entries are not supported: asking for such a
  registry's credentials raises `CredentialsError` naming the helper, so the caller can pass a
  username and password instead. The file is read only when a registry asks for credentials, so an
  anonymous pull works whatever the file says.
- `Challenge.parse`: the `WWW-Authenticate` header (RFC 7235 auth-params: `Bearer realm=..,
  service=..,scope=..` or `Basic realm=..`).
- `scope_for`: the token scopes a request needs (`repository:<name>:pull[,push]`).
- `TokenCache`: bearer tokens per (realm, service, scopes), dropped shortly before they expire.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oci.errors import CredentialsError

_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = "explicit credentials"  # for messages: "explicit credentials" or the config file path

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def _config_key_host(key: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`; `https://host:5000` -> `host:5000`."""
    host = key.strip()
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_ALIASES else host


def default_docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


@dataclass(frozen=True)
class DockerConfig:
    """The parts of a Docker config file spindle understands (see the module docstring)."""

    path: Path
    auths: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cred_helpers: Mapping[str, str] = field(default_factory=dict)
    creds_store: str | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> DockerConfig:
        """Read the file; a missing file is an empty config, a malformed one a CredentialsError."""
        path = Path(path) if path is not None else default_docker_config_path()
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise CredentialsError("(any)", f"cannot read Docker config {path}: {exc}") from exc
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CredentialsError("(any)", f"Docker config {path} is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise CredentialsError("(any)", f"Docker config {path} is not a JSON object")
        auths: dict[str, Mapping[str, Any]] = {}
        for key, entry in (document.get("auths") or {}).items():
            if isinstance(entry, dict):
                auths[_config_key_host(key)] = entry
        helpers = {
            _config_key_host(k): str(v)
            for k, v in (document.get("credHelpers") or {}).items()
            if isinstance(v, str)
        }
        store = document.get("credsStore")
        return cls(path, auths, helpers, store if isinstance(store, str) and store else None)

    def credentials_for(self, registry: str) -> Credentials | None:
        """The credentials stored for `registry` (its name, e.g. `docker.io` or `host:5000`), or None.

        Raises CredentialsError when a credential helper or identity token would be needed.
        """
        host = _config_key_host(registry)
        helper = self.cred_helpers.get(host)
        if helper:
            raise CredentialsError(
                registry,
                f"{self.path} names credential helper 'docker-credential-{helper}' (credHelpers) for it; "
                "credential helpers are not supported: pass a username and password instead",
            )
        entry = self.auths.get(host)
        if entry is not None:
            if entry.get("identitytoken"):
                raise CredentialsError(
                    registry,
                    f"{self.path} holds an identity token for it; identity tokens are not supported: "
                    "pass a username and password instead",
                )
            encoded = entry.get("auth")
            if isinstance(encoded, str) and encoded:
                try:
                    decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    raise CredentialsError(registry, f"{self.path}: its 'auth' value is not base64") from None
                if ":" not in decoded:
                    raise CredentialsError(registry, f"{self.path}: its 'auth' value is not 'user:password'")
                username, password = decoded.split(":", 1)
                return Credentials(username, password, str(self.path))
            user, secret = entry.get("username"), entry.get("password")
            if isinstance(user, str) and user and isinstance(secret, str):
                return Credentials(user, secret, str(self.path))
        if self.creds_store:
            raise CredentialsError(
                registry,
                f"{self.path} keeps credentials in the store 'docker-credential-{self.creds_store}' "
                "(credsStore); credential helpers are not supported: pass a username and password instead",
            )
        return None


@dataclass(frozen=True)
class Challenge:
    """One parsed `WWW-Authenticate` challenge."""

    scheme: str  # lower-case: "bearer" or "basic"
    params: Mapping[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        raw = self.params.get("scope", "")
        return tuple(s for s in raw.split(" ") if s)

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        """Parse the first challenge of a header value; None when it is empty or unparsable."""
        text = header.strip()
        if not text:
            return None
        scheme, _, rest = text.partition(" ")
        params: dict[str, str] = {}
        pos = 0
        while pos < len(rest):
            match = _PARAM.match(rest, pos)
            if match is None or match.end() == pos:
                break
            value = match.group(2)
            params[match.group(1).lower()] = (
                re.sub(r"\\(.)", r"\1", value) if value is not None else match.group(3) or ""
            )
            pos = match.end()
        return cls(scheme.lower(), params)


def scope_for(repository: str, actions: Iterable[str]) -> str:
    """`repository:team/app:pull,push` (actions in a fixed order: pull, push, then the rest sorted)."""
    wanted = set(actions)
    ordered = [a for a in ("pull", "push") if a in wanted] + sorted(wanted - {"pull", "push"})
    return f"repository:{repository}:{','.join(ordered)}"


def merge_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Union scopes that name the same resource (`repository:x:pull` + `repository:x:push`), sorted."""
    merged: dict[str, set[str]] = {}
    for scope in scopes:
        resource, _, actions = scope.rpartition(":")
        if not resource:
            merged.setdefault(scope, set())
            continue
        merged.setdefault(resource, set()).update(a for a in actions.split(",") if a)
    out = []
    for resource, wanted in merged.items():
        if not wanted:
            out.append(resource)
            continue
        ordered = [a for a in ("pull", "push") if a in wanted] + sorted(wanted - {"pull", "push"})
        out.append(f"{resource}:{','.join(ordered)}")
    return tuple(sorted(out))


@dataclass
class _Token:
    value: str
    expires: float


class TokenCache:
    """Bearer tokens per (realm, service, scopes); thread-safe; entries expire 10 s early."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, tuple[str, ...]], _Token] = {}
        self._lock = threading.Lock()

    def get(self, realm: str, service: str, scopes: tuple[str, ...]) -> str | None:
        with self._lock:
            token = self._tokens.get((realm, service, scopes))
            if token is None or token.expires <= self._clock():
                return None
            return token.value

    def put(self, realm: str, service: str, scopes: tuple[str, ...], value: str, expires_in: float) -> None:
        with self._lock:
            lifetime = max(float(expires_in) - 10.0, 1.0)
            self._tokens[(realm, service, scopes)] = _Token(value, self._clock() + lifetime)

    def drop(self, realm: str, service: str, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop((realm, service, scopes), None)
