"""Watch streams: the (type, object) events of one resource type, from the store's event log.

A watch starts with the current objects (unless it resumes from a resourceVersion, which must
still be in the log, else a 410 `Expired` ERROR event), then follows changes. Label/field selectors
turn a MODIFIED event into ADDED or DELETED when an object enters or leaves the selection, as the
real watch cache does. Watch-list (`sendInitialEvents=true`) ends the initial objects with the
`k8s.io/initial-events-end` bookmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kubesim import selectors
from kubesim.calls import Call
from kubesim.errors import bad_request, gone
from kubesim.reads import present
from kubesim.resources import ResourceType
from kubesim.selectors import parse_fields, parse_labels
from kubesim.storage import Entry, Event, Store

WatchEvent = tuple[str, dict[str, Any]]
BOOKMARK_INTERVAL = 30.0  # seconds between bookmarks a client allowed


def watch(store: Store, call: Call, stop: Callable[[], bool], timeout: float) -> Iterator[WatchEvent]:
    """(type, object) events: the current objects first unless resuming, then changes.

    Client errors (bad selector, bad resourceVersion) are raised here, before the stream starts.
    """
    rtype = call.rtype
    q = call.query
    ns = call.namespace if rtype.namespaced and call.namespace else None
    lpred = parse_labels(q["labelSelector"]) if q.get("labelSelector") else None
    fpred = (
        parse_fields(q["fieldSelector"], selectors.selectable_fields(rtype))
        if q.get("fieldSelector")
        else None
    )
    rv_param = q.get("resourceVersion", "")
    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")

    def matches(e: Entry) -> bool:
        return (lpred is None or lpred(e.labels)) and (fpred is None or fpred(e.obj))

    watch_list = q.get("sendInitialEvents") in ("true", "1")
    with store.changed:  # a committed snapshot: the initial objects and the rv they are at
        if rv_param in ("", "0") or watch_list:
            since = store.rv
            initial = [e for e in store.items(rtype.storage_key, ns) if matches(e)]
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise bad_request(f'invalid resource version "{rv_param}"') from None
            initial = []
            oldest = store.oldest_event_rv() - 1
            if since < oldest:
                expired = gone(f"too old resource version: {since} ({oldest})").status()
                return iter([("ERROR", expired)])
    stream = _stream(store, rtype, ns, initial, since, matches, bookmarks, stop, timeout)
    if not watch_list:
        return stream
    return _initial_events_end(stream, len(initial), rtype, since)


def _bookmark(rtype: ResourceType, rv: int, **annotations: str) -> WatchEvent:
    metadata: dict[str, Any] = {"resourceVersion": str(rv)}
    if annotations:
        metadata["annotations"] = annotations
    return ("BOOKMARK", {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": metadata})


def _initial_events_end(
    stream: Iterator[WatchEvent], count: int, rtype: ResourceType, rv: int
) -> Iterator[WatchEvent]:
    for _ in range(count):
        item = next(stream, None)
        if item is None:
            return
        yield item
    yield _bookmark(rtype, rv, **{"k8s.io/initial-events-end": "true"})
    yield from stream


def _stream(
    store: Store,
    rtype: ResourceType,
    ns: str | None,
    initial: list[Entry],
    since: int,
    matches: Callable[[Entry], bool],
    bookmarks: bool,
    stop: Callable[[], bool],
    timeout: float,
) -> Iterator[WatchEvent]:
    for e in initial:
        yield "ADDED", present(rtype, e)
    deadline = time.monotonic() + timeout
    last_bookmark = time.monotonic()
    while not stop():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        with store.changed:
            if store.rv <= since:
                # Wake at least once a second to notice stop() and the deadline.
                store.changed.wait(min(remaining, 1.0))
            pending = list(_events_after(store.events, since))
            if pending:
                since = pending[-1].rv
        for ev in pending:
            if ev.res != rtype.storage_key or (ns is not None and ev.ns != ns):
                continue
            seen = _seen_as(ev, matches)
            if seen is not None:
                yield seen, present(rtype, ev.entry)
        if bookmarks and time.monotonic() - last_bookmark > BOOKMARK_INTERVAL:
            last_bookmark = time.monotonic()
            yield _bookmark(rtype, since)


def _seen_as(ev: Event, matches: Callable[[Entry], bool]) -> str | None:
    """The event type a selecting watcher sees, or None when the change is outside its selection."""
    now_matches = matches(ev.entry)
    if ev.type == "MODIFIED" and ev.prev is not None:
        was = matches(ev.prev)
        if now_matches and not was:
            return "ADDED"
        if was and not now_matches:
            return "DELETED"
    return ev.type if now_matches else None


def _events_after(events: Sequence[Event], since: int) -> Iterator[Event]:
    # The log is ordered by rv: walk back from the end to the first newer event.
    n = len(events)
    i = n
    while i > 0 and events[i - 1].rv > since:
        i -= 1
    for j in range(i, n):
        yield events[j]
