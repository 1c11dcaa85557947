"""Spin HTTP routing: exact routes, `/...` wildcards, the most specific route wins.

Private routes are never reachable from the network. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shim.manifest import HttpTrigger, RouteKind


@dataclass(frozen=True)
class Match:
    trigger: HttpTrigger
    path_info: str  # the part of the path after the route's prefix ("" for exact routes)


class Router:
    def __init__(self, triggers: Iterable[HttpTrigger]) -> None:
        self._exact: dict[str, HttpTrigger] = {}
        wild: list[HttpTrigger] = []
        for t in triggers:
            if t.route.kind is RouteKind.EXACT:
                self._exact.setdefault(t.route.raw, t)
            elif t.route.kind is RouteKind.WILDCARD:
                wild.append(t)
        # longest prefix first: the most specific wildcard wins
        self._wild = sorted(wild, key=lambda t: len(t.route.prefix), reverse=True)

    def match(self, path: str) -> Match | None:
        """`path` is the request path without the query string."""
        norm = path.rstrip("/") or "/"
        exact = self._exact.get(norm)
        if exact is not None:
            return Match(exact, "")
        for t in self._wild:
            prefix = t.route.prefix
            if prefix == "" or norm == prefix or path.startswith(prefix + "/"):
                return Match(t, path[len(prefix):])
        return None


def spin_headers(match: Match, *, scheme: str, host: str, path_with_query: str,
                 client_addr: str) -> list[tuple[str, str]]:
    """The request headers Spin adds for the guest."""
    route = match.trigger.route
    return [
        ("spin-full-url", f"{scheme}://{host}{path_with_query}"),
        ("spin-path-info", match.path_info),
        ("spin-matched-route", route.raw),
        ("spin-base-path", "/"),
        ("spin-raw-component-route", route.raw),
        ("spin-component-route", route.prefix),
        ("spin-client-addr", client_addr),
    ]
