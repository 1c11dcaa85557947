"""The one place spindle talks to a Kubernetes API server.

Built on the `kubernetes` package's `ApiClient` (its configuration, auth and urllib3 pool), but
requests are sent raw and bodies parsed as plain JSON: model deserialisation costs more than
the request for thousands of objects. The client owns timeouts, bounded retries with backoff
that honour `Retry-After`, discovery (kind → resource, cached per group-version) and the
translation of failures into `reconciler.kube.errors`.

Tests hand in an `ApiClient` connected to a real kubesim; nothing here is patched.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from reconciler.kube import errors

Obj = dict[str, Any]

FIELD_MANAGER = "spindle"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Resource:
    """How a kind is served: `/apis/<group>/<version>/[namespaces/<ns>/]<plural>`."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def collection(self, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        return f"{base}/{self.plural}"

    def item(self, name: str, namespace: str | None = None) -> str:
        return f"{self.collection(namespace)}/{quote(name, safe='')}"

    def subject(self, name: str, namespace: str | None = None) -> str:
        """`Kind/namespace/name`, or `Kind/name` when the kind is cluster-scoped."""
        return f"{self.kind}/{namespace}/{name}" if namespace and self.namespaced else f"{self.kind}/{name}"


def subject_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    kind, name, ns = obj.get("kind", "?"), meta.get("name", "?"), meta.get("namespace")
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff: float = 0.2  # seconds, doubled per attempt
    max_delay: float = 5.0


class KubeClient:
    """Thread-safe: the dry-run phase calls it from a pool of workers."""

    def __init__(
        self,
        api_client: Any,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "spindle",
        reload: Callable[[], Any] | None = None,
        failure_budget: float = 60.0,
        max_failures: int = 3,
    ) -> None:
        self.api = api_client
        self._reload = reload  # a fresh ApiClient from the kubeconfig (a new token, after a 401)
        self.failure_budget = failure_budget  # seconds of connection failures in a row
        self.max_failures = max_failures  # requests in a row that failed to connect
        self._failures = 0
        self._failing_since = 0.0
        self._tripped: errors.Unreachable | None = None
        self.host = str(api_client.configuration.host).rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._groups: dict[str, dict[str, Resource]] = {}  # api_version → kind → Resource
        self.requests = 0  # sent requests, retries included (the benchmark reads this)

    # -- transport -------------------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        subject: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """Send one request, retrying transient failures; (HTTP status, parsed JSON body).

        The status tells a create (201) from an update; `subject` names the object in errors."""
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        attempt = 0
        reloaded = False
        while True:
            attempt += 1
            with self._lock:
                self.requests += 1
                if self._tripped is not None:
                    raise self._tripped
                api = self.api
            url = self.host + path + ("?" + urlencode(query) if query else "")
            headers = {
                "Accept": "application/json", "Content-Type": content_type, "User-Agent": self._user_agent
            }
            api.update_params_for_auth(headers, [], ["BearerToken"])
            try:
                resp = api.rest_client.pool_manager.request(
                    method,
                    url,
                    body=data,
                    headers=headers,
                    preload_content=True,
                    timeout=self.timeout,
                    retries=False,
                )
            except Exception as exc:  # urllib3 errors: connection refused, timeouts, TLS
                if attempt >= self.retry.attempts:
                    self._failed(exc)
                    raise errors.Unavailable(subject, f"{method} {path}: {exc}") from exc
                self._check_budget(exc)
                self._sleep(self._delay(attempt, None))
                continue
            self._answered()
            status = int(resp.status)
            if status == 401 and not reloaded and self.reload_credentials():
                reloaded = True  # once: a restarted server (or a rotated token) gave new credentials
                attempt -= 1
                continue
            if 200 <= status < 300:
                raw = resp.data
                return status, (json.loads(raw) if raw else None)
            if status in _RETRY_STATUSES and attempt < self.retry.attempts:
                self._sleep(self._delay(attempt, resp.headers.get("Retry-After")))
                continue
            raise errors.from_response(subject, status, resp.data)

    # -- failing fast ----------------------------------------------------------------------

    def _failed(self, exc: Exception) -> None:
        """Count a request that failed to connect after its retries; after `max_failures` in a
        row, or `failure_budget` seconds of failures, every request (this one included) raises
        one Unreachable naming the server."""
        with self._lock:
            self._failures += 1
        self._check_budget(exc)

    def _check_budget(self, exc: Exception) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._failing_since:
                self._failing_since = now
            elapsed = now - self._failing_since
            if self._tripped is None and (
                self._failures >= self.max_failures or elapsed >= self.failure_budget
            ):
                self._tripped = errors.Unreachable(
                    f"API server {self.host}",
                    f"unreachable: {self._failures} requests in a row failed to connect over "
                    f"{elapsed:.1f}s, the run stopped (last: {type(exc).__name__})",
                )
            tripped = self._tripped
        if tripped is not None:
            raise tripped from exc

    def _answered(self) -> None:
        with self._lock:
            self._failures = 0
            self._failing_since = 0.0

    def reload_credentials(self) -> bool:
        """Reload the kubeconfig (a restarted embedded cluster writes a new token); whether
        there was anything to reload."""
        if self._reload is None:
            return False
        try:
            api = self._reload()
        except Exception:  # the kubeconfig is gone or broken: the 401 stands
            return False
        with self._lock:  # the old pool is left to requests still using it
            self.api = api
            self.host = str(api.configuration.host).rstrip("/")
            self._groups.clear()
        return True

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.retry.max_delay)
            except ValueError:
                pass
        return float(min(self.retry.backoff * 2 ** (attempt - 1), self.retry.max_delay))

    # -- discovery -------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        """The resource serving `kind` (one discovery request per group-version, cached)."""
        kinds = self._groups.get(api_version)
        if kinds is None:
            try:
                kinds = self._discover(api_version)
            except errors.UnknownKind as exc:
                raise errors.UnknownKind(f"{kind} ({api_version})", exc.message) from exc
        res = kinds.get(kind)
        if res is None:
            raise errors.UnknownKind(f"{kind} ({api_version})", "the server does not serve this kind")
        return res

    def forget(self, api_version: str) -> None:
        """Drop the cached discovery of a group-version (after a CRD was created)."""
        self._groups.pop(api_version, None)

    def _discover(self, api_version: str) -> dict[str, Resource]:
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{api_version}" if group else f"/api/{version}"
        try:
            _, doc = self.send("GET", path, subject=f"apiVersion {api_version}")
        except errors.NotFound as exc:
            raise errors.UnknownKind(f"apiVersion {api_version}", "not served by the cluster") from exc
        kinds: dict[str, Resource] = {}
        for r in doc.get("resources") or []:
            if "/" in r.get("name", ""):  # subresources such as deployments/scale
                continue
            kinds.setdefault(
                r["kind"], Resource(group, version, r["kind"], r["name"], bool(r.get("namespaced")))
            )
        self._groups[api_version] = kinds
        return kinds

    def namespaced_listable(self) -> list[Resource]:
        """Every namespaced resource the server lists, one preferred version per group (what
        `kubectl api-resources --namespaced --verbs=list` shows)."""
        _, core = self.send("GET", "/api", subject="API versions")
        _, groups = self.send("GET", "/apis", subject="API groups")
        versions = [v for v in (core or {}).get("versions") or []]
        versions += [
            str((g.get("preferredVersion") or {}).get("groupVersion") or "")
            for g in (groups or {}).get("groups") or []
        ]
        out: list[Resource] = []
        for api_version in filter(None, versions):
            group, _, version = api_version.rpartition("/")
            path = f"/apis/{api_version}" if group else f"/api/{version}"
            try:
                _, doc = self.send("GET", path, subject=f"apiVersion {api_version}")
            except errors.NotFound:
                continue  # a group going away (its CRD was just deleted)
            for r in (doc or {}).get("resources") or []:
                subresource = "/" in r.get("name", "")
                if subresource or not r.get("namespaced") or "list" not in (r.get("verbs") or []):
                    continue
                out.append(Resource(group, version, r["kind"], r["name"], True))
        return out

    # -- verbs -----------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The live object, or None when it does not exist."""
        res = self.resource(api_version, kind)
        try:
            _, obj = self.send("GET", res.item(name, namespace), subject=res.subject(name, namespace))
        except errors.NotFound:
            return None
        live: Obj = obj
        return live

    def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        """Every object of a kind (all namespaces unless `namespace`), in one request."""
        res = self.resource(api_version, kind)
        query = {"labelSelector": label_selector} if label_selector else None
        try:
            _, doc = self.send("GET", res.collection(namespace), subject=f"{kind} list", query=query)
        except errors.NotFound as exc:
            # The kind went away since discovery (its CRD was deleted): forget it.
            self.forget(api_version)
            raise errors.UnknownKind(f"{kind} ({api_version})", "no longer served by the cluster") from exc
        items: list[Obj] = doc.get("items") or []
        for item in items:  # list items omit apiVersion/kind
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", kind)
        return items

    def apply(
        self, obj: Obj, *, dry_run: bool = False, force: bool = True, field_manager: str = FIELD_MANAGER
    ) -> Obj:
        """Server-side apply `obj` (creates it when missing). Returns the (predicted) object."""
        return self.apply_status(obj, dry_run=dry_run, force=force, field_manager=field_manager)[0]

    def apply_status(
        self, obj: Obj, *, dry_run: bool = False, force: bool = True, field_manager: str = FIELD_MANAGER
    ) -> tuple[Obj, bool]:
        """`apply`, also telling whether the object was (or would be) created (HTTP 201)."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        # Strict, as kubectl does: an unknown or duplicate field is an error naming it, not a
        # silently dropped line of Git.
        query = {"fieldManager": field_manager, "fieldValidation": "Strict"}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        status, out = self.send(
            "PATCH",
            res.item(meta["name"], meta.get("namespace")),
            subject=subject_of(obj),
            query=query,
            body=obj,
            content_type=APPLY_CONTENT_TYPE,
        )
        result: Obj = out
        return result, status == 201

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        body: Any,
        *,
        json_patch: bool = False,
    ) -> Obj:
        """A JSON (RFC 6902) or merge patch; used for labels and managedFields clean-up."""
        res = self.resource(api_version, kind)
        ctype = "application/json-patch+json" if json_patch else "application/merge-patch+json"
        _, out = self.send(
            "PATCH",
            res.item(name, namespace),
            subject=res.subject(name, namespace),
            query={"fieldManager": FIELD_MANAGER},
            body=body,
            content_type=ctype,
        )
        patched: Obj = out
        return patched

    def patch_labels(self, api_version: str, kind: str, name: str, labels: Mapping[str, str | None]) -> Obj:
        """Set (or, with None, remove) labels on a cluster-scoped or namespaced object."""
        return self.patch(api_version, kind, name, None, {"metadata": {"labels": dict(labels)}})

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete with background propagation; False when it was already gone."""
        res = self.resource(api_version, kind)
        try:
            self.send(
                "DELETE",
                res.item(name, namespace),
                subject=res.subject(name, namespace),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except errors.NotFound:
            return False
        return True

    def create(self, obj: Obj) -> Obj:
        res = self.resource(obj["apiVersion"], obj["kind"])
        ns = (obj.get("metadata") or {}).get("namespace")
        _, out = self.send("POST", res.collection(ns), subject=subject_of(obj), body=obj)
        created: Obj = out
        return created
