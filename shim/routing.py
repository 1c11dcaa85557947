"""Spin HTTP routing: exact routes, `:name` single-segment wildcards, `/...` trailing wildcards.

The most specific route wins, compared segment by segment: a literal segment beats a `:name`
segment, which beats a trailing wildcard; a route that ends exactly beats one that continues
with a wildcard. Private routes are never reachable from the network. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shim.manifest import HttpTrigger, RouteKind

_LITERAL, _PARAM, _WILD, _END = 2, 1, 0, 3


@dataclass(frozen=True)
class Match:
    trigger: HttpTrigger
    path_info: str  # the trailing-wildcard part of the path ("" for exact routes)
    params: dict[str, str] = field(default_factory=dict)  # `:name` captures


@dataclass(frozen=True)
class _Compiled:
    trigger: HttpTrigger
    segments: tuple[str, ...]
    wildcard: bool


def _segments(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


class Router:
    def __init__(self, triggers: Iterable[HttpTrigger]) -> None:
        self._routes: list[_Compiled] = []
        # (trigger never used, the trigger that serves its route instead)
        self.duplicates: list[tuple[HttpTrigger, HttpTrigger]] = []
        seen: dict[str, HttpTrigger] = {}
        for t in triggers:
            if t.route.kind is RouteKind.PRIVATE:
                continue
            if t.route.based in seen:  # a duplicate route: the first one wins
                self.duplicates.append((t, seen[t.route.based]))
                continue
            seen[t.route.based] = t
            wildcard = t.route.kind is RouteKind.WILDCARD
            self._routes.append(_Compiled(t, tuple(_segments(t.route.based_prefix)), wildcard))

    def match(self, path: str) -> Match | None:
        """`path` is the request path without the query string."""
        segs = _segments(path)
        best: tuple[list[int], _Compiled, dict[str, str]] | None = None
        for r in self._routes:
            n = len(r.segments)
            if len(segs) < n or (not r.wildcard and len(segs) != n):
                continue
            score: list[int] = []
            params: dict[str, str] = {}
            for want, got in zip(r.segments, segs, strict=False):
                if want.startswith(":"):
                    params[want[1:]] = got
                    score.append(_PARAM)
                elif want == got:
                    score.append(_LITERAL)
                else:
                    break
            else:
                score.append(_WILD if r.wildcard else _END)
                if best is None or score > best[0]:
                    best = (score, r, params)
        if best is None:
            return None
        _, r, params = best
        if not r.wildcard:
            return Match(r.trigger, "", params)
        rest = "/".join(segs[len(r.segments):])
        info = (f"/{rest}" if rest else "") + ("/" if path.endswith("/") else "")
        return Match(r.trigger, info, params)


def spin_headers(match: Match, *, scheme: str, host: str, path_with_query: str,
                 client_addr: str) -> list[tuple[str, str]]:
    """The request headers Spin adds for the guest (WAGI gets them as X_* variables)."""
    route = match.trigger.route
    headers = [
        ("spin-full-url", f"{scheme}://{host}{path_with_query}"),
        ("spin-path-info", match.path_info),
        ("spin-matched-route", route.based),
        ("spin-base-path", route.base or "/"),
        ("spin-raw-component-route", route.raw),
        ("spin-component-route", route.prefix),
        ("spin-client-addr", client_addr),
    ]
    headers += [(f"spin-path-match-{name.lower()}", value) for name, value in match.params.items()]
    return headers
