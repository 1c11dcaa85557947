"""The one HTTP chokepoint for registry traffic: scheme and TLS, auth, retries, redirects, error mapping.

Why urllib3 and not a kept registry client: oras-py (0.2.43, the kept Python one) was evaluated and
does not do the job: it re-serializes manifests with `json=` (so the pushed digest differs from the
layout's), returns parsed manifests only (no raw bytes, so no digest check on pull), never verifies
downloaded blobs, has no cross-repository mount, retries only HTTP 500 (not 429/502/503/504) with
unbounded `2 + 3**n` s sleeps and no Retry-After, and ships no type information. Why urllib3 and
not httpx or requests: urllib3 is already installed as a dependency of `kubernetes` (httpx is not
installed at all), it streams request bodies from files and response bodies in chunks, and it lets
this module own retries and redirects (both turned off in urllib3) so Retry-After, the backoff bound
and "never send credentials to another host on a redirect" are decided in one place.

Rules:
- HTTPS always, except plain HTTP for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`), where HTTPS
  is tried first and plain HTTP used when the TLS handshake fails, or for any host when
  `force_plain_http=True`. TLS trusts the system store plus `ca_file` when given.
- Auth: the first request to a registry pings `GET /v2/`; its `WWW-Authenticate` challenge decides.
  Basic sends the credentials with every request; Bearer fetches a token from the realm for the
  scopes the request needs (cached per scope set). A 401 after that is an `AuthError` naming the
  registry and where the credentials came from. Credentials are looked up only when challenged.
- Retries: 429, 500, 502, 503, 504 and connection errors are retried with exponential backoff,
  bounded (`RetryPolicy`), honoring `Retry-After` (seconds or an HTTP date, capped). TLS errors are
  not retried.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import ipaddress
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode, urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import SSLError as Urllib3SSLError

from oci.auth import Challenge, Credentials, TokenCache, merge_scopes
from oci.errors import (
    AuthError,
    CredentialsError,
    NotFound,
    RegistryError,
    RegistryProtocolError,
    Unreachable,
)

logger = logging.getLogger("oci.registry")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
Body = bytes | Callable[[], AbstractContextManager[BinaryIO]] | None


@dataclass(frozen=True)
class RetryPolicy:
    """Tries per request and the backoff between them: initial * 2**n, at most `max_delay`."""

    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, retry: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based); Retry-After wins, capped."""
        if retry_after:
            seconds = _parse_retry_after(retry_after)
            if seconds is not None:
                return min(max(seconds, 0.0), self.max_retry_after)
        return min(self.initial_delay * 2.0 ** max(retry - 1, 0), self.max_delay)


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when: datetime.datetime = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _error_detail(response: urllib3.BaseHTTPResponse) -> str:
    """`CODE: message` from a distribution error body, else the body's start (never more than 256 chars)."""
    try:
        raw = response.read(64 * 1024)
    except Urllib3HTTPError:
        raw = b""
    try:
        document = json.loads(raw)
        errors = document.get("errors") if isinstance(document, dict) else None
        if isinstance(errors, list) and errors:
            parts = [f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors if isinstance(e, dict)]
            return "; ".join(parts)[:256]
    except (ValueError, UnicodeDecodeError):
        pass
    return raw.decode("utf-8", "replace").strip()[:256]


class Transport:
    """HTTP to one registry host. Thread-safe; share one `urllib3.PoolManager` between transports."""

    def __init__(
        self,
        registry: str,
        api_host: str,
        *,
        pool: urllib3.PoolManager,
        plain_pool: urllib3.PoolManager,
        credentials: Callable[[], Credentials | None],
        force_plain_http: bool = False,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        token_cache: TokenCache | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.registry = registry
        self.api_host = api_host
        self._pool = pool
        self._plain_pool = plain_pool
        self._credentials_provider = credentials
        self._force_plain = force_plain_http
        self.retry = retry or RetryPolicy()
        self._timeout = urllib3.Timeout(connect=min(timeout, 15.0), read=timeout)
        self._tokens = token_cache or TokenCache()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._scheme: str | None = None
        self._challenge: Challenge | None = None
        self._pinged = False
        self._credentials_loaded = False
        self._credentials: Credentials | None = None

    # --- public --------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        self.ping()
        return f"{self._scheme}://{self.api_host}"

    def ping(self) -> None:
        """Find the scheme and the auth challenge of the registry (once)."""
        with self._lock:
            if self._pinged:
                return
            if self._force_plain:
                schemes = ["http"]
            elif is_loopback(self.api_host):
                schemes = ["https", "http"]
            else:
                schemes = ["https"]
            tls_error: Unreachable | None = None
            for scheme in schemes:
                try:
                    response = self._exchange("GET", f"{scheme}://{self.api_host}/v2/", {}, None, "ping")
                except Unreachable as exc:
                    if scheme == "https" and "http" in schemes and isinstance(exc.__cause__, Urllib3SSLError):
                        tls_error = exc  # maybe a plain-HTTP loopback registry: try that next
                        continue
                    raise
                with contextlib.closing(response):
                    status = response.status
                    if status not in (200, 401):
                        if tls_error is not None:
                            raise tls_error  # plain HTTP did not answer like a registry either
                        raise RegistryProtocolError(
                            self.registry,
                            f"GET /v2/ answered HTTP {status} ({_error_detail(response)}); no OCI registry?",
                            status=status,
                        )
                    header = response.headers.get("WWW-Authenticate", "")
                    self._challenge = Challenge.parse(header) if status == 401 else None
                    if status == 401 and (
                        self._challenge is None or self._challenge.scheme not in ("basic", "bearer")
                    ):
                        raise RegistryProtocolError(
                            self.registry,
                            f"GET /v2/ answered 401 with an unsupported challenge {header!r}",
                            status=401,
                        )
                self._scheme = scheme
                self._pinged = True
                return

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        what: str,
        scopes: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        expect: Iterable[int] = (200,),
    ) -> urllib3.BaseHTTPResponse:
        """Send one API request with auth and retries; returns the (unread, streaming) response.

        `what` names the object for error messages ("manifest team/app:1"). A status not in `expect`
        raises: 404 NotFound, 401/403 AuthError, else RegistryProtocolError. The caller reads the
        response and then calls `finish(response)`.
        """
        url = path_or_url if "://" in path_or_url else urljoin(self.base_url, path_or_url)
        wanted = frozenset(expect)
        scope_set = merge_scopes(scopes)
        challenged = False
        while True:
            send_headers = dict(headers or {})
            auth = self._auth_header(scope_set)
            if auth:
                send_headers["Authorization"] = auth
            response = self._exchange(method, url, send_headers, body, what)
            if response.status == 401 and 401 not in wanted:
                challenge = Challenge.parse(response.headers.get("WWW-Authenticate", ""))
                detail = _error_detail(response)
                finish(response)
                if challenged or challenge is None:
                    raise self._rejected(what, detail)
                challenged = True
                self._accept_challenge(challenge, scope_set)
                scope_set = merge_scopes([*scope_set, *challenge.scopes])
                continue
            if response.status in wanted:
                return response
            detail = _error_detail(response)
            finish(response)
            status = response.status
            message = f"{what}: HTTP {status}" + (f" ({detail})" if detail else "")
            if status == 404:
                raise NotFound(self.registry, message, status=status)
            if status == 403:
                raise AuthError(
                    self.registry, f"{what}: access denied (HTTP 403{', ' + detail if detail else ''})"
                )
            if status == 401:
                raise self._rejected(what, detail)
            raise RegistryProtocolError(self.registry, message, status=status)

    # --- auth ----------------------------------------------------------------------------------------

    def _creds(self) -> Credentials | None:
        if not self._credentials_loaded:
            self._credentials = self._credentials_provider()  # may raise CredentialsError
            self._credentials_loaded = True
        return self._credentials

    def _rejected(self, what: str, detail: str) -> AuthError:
        try:
            creds = self._creds()
        except CredentialsError as exc:
            return AuthError(self.registry, f"{what}: authentication required, and {exc}")
        suffix = f" ({detail})" if detail else ""
        if creds is None:
            return AuthError(
                self.registry,
                f"{what}: authentication required and no credentials were given or found in the Docker "
                f"config{suffix}",
            )
        return AuthError(
            self.registry,
            f"{what}: the credentials of user {creds.username!r} ({creds.source}) were rejected{suffix}",
        )

    def _accept_challenge(self, challenge: Challenge, scopes: tuple[str, ...]) -> None:
        if challenge.scheme not in ("basic", "bearer"):
            raise AuthError(self.registry, f"unsupported auth scheme {challenge.scheme!r}")
        previous = self._challenge
        self._challenge = challenge
        if previous is not None and previous.scheme == "bearer":
            self._tokens.drop(previous.realm, previous.service or "", scopes)

    def _auth_header(self, scopes: tuple[str, ...]) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self._creds()
            if creds is None:
                raise AuthError(
                    self.registry,
                    "basic authentication required; no credentials were given or found in the Docker config",
                )
            return creds.basic_header()
        service = challenge.service or ""
        token = self._tokens.get(challenge.realm, service, scopes)
        if token is None:
            token, expires_in = self._fetch_token(challenge, scopes)
            self._tokens.put(challenge.realm, service, scopes, token, expires_in)
        return f"Bearer {token}"

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> tuple[str, float]:
        realm = challenge.realm
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthError(self.registry, f"the token realm {realm!r} is not an http(s) URL")
        if parts.scheme == "http" and not (self._force_plain or is_loopback(parts.netloc)):
            raise AuthError(self.registry, f"refusing to fetch a token over plain HTTP from {realm}")
        query: list[tuple[str, str]] = []
        if challenge.service:
            query.append(("service", challenge.service))
        query += [("scope", scope) for scope in scopes]
        creds = self._creds()
        headers: dict[str, str] = {}
        if creds is not None:
            query.append(("account", creds.username))
            headers["Authorization"] = creds.basic_header()
        url = realm + ("&" if parts.query else "?") + urlencode(query)
        response = self._exchange("GET", url, headers, None, f"token from {realm}")
        with contextlib.closing(response):
            if response.status in (401, 403):
                who = f"user {creds.username!r} ({creds.source})" if creds else "anonymous access"
                raise AuthError(
                    self.registry,
                    f"the token server {realm} refused {who} for {' '.join(scopes) or 'no scope'} "
                    f"(HTTP {response.status})",
                    status=response.status,
                )
            if response.status != 200:
                raise AuthError(
                    self.registry,
                    f"the token server {realm} answered HTTP {response.status}",
                    status=response.status,
                )
            try:
                document = json.loads(response.read(1 << 20))
            except ValueError:
                raise AuthError(self.registry, f"the token server {realm} sent no JSON") from None
        token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError(self.registry, f"the token server {realm} sent no token")
        expires_in = document.get("expires_in", 60)
        return token, float(expires_in) if isinstance(expires_in, int | float) else 60.0

    # --- one exchange with retries -------------------------------------------------------------------

    def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body,
        what: str,
    ) -> urllib3.BaseHTTPResponse:
        """Send with retries on connection errors and 429/5xx, following GET/HEAD redirects."""
        retry = 0
        redirects = 0
        current = url
        send_headers = dict(headers)
        while True:
            try:
                response = self._send(method, current, send_headers, body)
            except Urllib3SSLError as exc:
                host = urlsplit(current).netloc
                raise Unreachable(self.registry, f"{what}: TLS handshake with {host} failed: {exc}") from exc
            except Urllib3HTTPError as exc:
                retry += 1
                if retry >= self.retry.attempts:
                    raise Unreachable(
                        self.registry,
                        f"{what}: {method} {_strip_query(current)} failed after {retry} tries: {exc}",
                    ) from exc
                delay = self.retry.delay(retry)
                logger.info("%s %s: %s; retrying in %.2fs", method, _strip_query(current), exc, delay)
                self._sleep(delay)
                continue
            logger.debug("%s %s -> %d", method, _strip_query(current), response.status)
            if response.status in RETRY_STATUSES and retry + 1 < self.retry.attempts:
                retry += 1
                delay = self.retry.delay(retry, response.headers.get("Retry-After"))
                finish(response)
                logger.info(
                    "%s %s -> %d; retrying in %.2fs", method, _strip_query(current), response.status, delay
                )
                self._sleep(delay)
                continue
            if (
                response.status in REDIRECT_STATUSES
                and method in ("GET", "HEAD")
                and "Location" in response.headers
            ):
                redirects += 1
                if redirects > 5:
                    raise RegistryProtocolError(self.registry, f"{what}: too many redirects")
                target = urljoin(current, response.headers["Location"])
                finish(response)
                if urlsplit(target).netloc != urlsplit(current).netloc:
                    send_headers.pop("Authorization", None)  # never hand credentials to another host
                current = target
                continue
            return response

    def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: Body
    ) -> urllib3.BaseHTTPResponse:
        pool = self._plain_pool if url.startswith("http://") else self._pool
        common: dict[str, Any] = {
            "headers": dict(headers),
            "preload_content": False,
            "redirect": False,
            "retries": False,
            "timeout": self._timeout,
        }
        if body is None or isinstance(body, bytes):
            return pool.request(method, url, body=body, **common)
        with body() as stream:
            return pool.request(method, url, body=stream, **common)


def finish(response: urllib3.BaseHTTPResponse) -> None:
    """Discard what is left of the body and return the connection to the pool (never raises).

    Releasing an unread response would hand a busy connection to the next request.
    """
    response.drain_conn()  # swallows I/O errors itself
    response.release_conn()


def _strip_query(url: str) -> str:
    """The URL without its query (upload URLs carry opaque state; tokens may ride in queries)."""
    return url.split("?", 1)[0]


def make_pools(ca_file: Path | None) -> tuple[urllib3.PoolManager, urllib3.PoolManager]:
    """(TLS pool trusting the system store plus `ca_file`, plain pool)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError("(TLS setup)", f"cannot load CA file {ca_file}: {exc}") from exc
    return urllib3.PoolManager(maxsize=4, ssl_context=context), urllib3.PoolManager(maxsize=4)
