"""Reading stored objects as a client sees them: one object in the URL's version, the selection a
list or deletecollection works on (label/field selectors, limit/continue), and the list answer."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from kubesim import conversion, selectors
from kubesim.calls import Call, Reply
from kubesim.errors import bad_request, gone, not_found
from kubesim.resources import ResourceType
from kubesim.selectors import parse_fields, parse_labels
from kubesim.storage import Entry, Store, dumps


def present(rtype: ResourceType, entry: Entry) -> dict[str, Any]:
    """A private copy of the stored object, in the version the client asked for."""
    return conversion.to_version(rtype.storage_key, entry.load(), rtype.api_version)


def view(rtype: ResourceType, entry: Entry) -> dict[str, Any]:
    """The stored object in the client's version, READ-ONLY: the cached one when no conversion is
    needed (the write paths only read `live`), else a converted private copy."""
    if entry.obj.get("apiVersion") == rtype.api_version:
        return entry.obj
    return present(rtype, entry)


def answer(rtype: ResourceType, entry: Entry, code: int = 200) -> Reply:
    """A stored object as the answer: its stored text as is (no decoding and re-encoding) when the
    client reads the version it is stored in."""
    if entry.obj.get("apiVersion") == rtype.api_version:
        return Reply(code, text=entry.text)
    return Reply(code, present(rtype, entry))


def existing(store: Store, call: Call) -> Entry:
    """The object the URL names; 404 when there is none."""
    rtype = call.rtype
    entry = store.get(rtype.storage_key, call.namespace if rtype.namespaced else "", call.name)
    if entry is None:
        raise not_found(rtype.plural, rtype.group, call.name)
    return entry


def select(store: Store, call: Call) -> tuple[list[Entry], str, int]:
    """(entries, continue token, remaining count) of a list call, in (namespace, name) order."""
    q = call.query
    ns = call.namespace if call.rtype.namespaced and call.namespace else None
    entries = store.items(call.rtype.storage_key, ns)
    if q.get("labelSelector"):
        pred = parse_labels(q["labelSelector"])
        entries = [e for e in entries if pred(e.labels)]
    if q.get("fieldSelector"):
        fpred = parse_fields(q["fieldSelector"], selectors.selectable_fields(call.rtype))
        entries = [e for e in entries if fpred(e.obj)]
    start = q.get("continue")
    if start:
        after = _decode_continue(start, store.oldest_event_rv())
        entries = [e for e in entries if _key(e) > after]
    limit = int_param(q, "limit")
    if limit and len(entries) > limit:
        last = entries[limit - 1]
        token = base64.urlsafe_b64encode(
            json.dumps({"rv": store.rv, "after": list(_key(last))}).encode()
        ).decode()
        return entries[:limit], token, len(entries) - limit
    return entries, "", 0


def list_text(rtype: ResourceType, entries: list[Entry], list_meta: dict[str, Any]) -> str:
    """The list answer as JSON text, splicing in the stored texts (no re-encoding) when they are
    already in the version the client asked for."""
    if any(e.obj.get("apiVersion") != rtype.api_version for e in entries):
        texts = [dumps(present(rtype, e)) for e in entries]
    else:
        texts = [e.text for e in entries]
    head = dumps({"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": list_meta})
    return head[:-1] + ',"items":[' + ",".join(texts) + "]}"


def int_param(q: dict[str, str], name: str) -> int:
    raw = q.get(name)
    if not raw:
        return 0
    try:
        return max(0, int(raw))
    except ValueError:
        raise bad_request(f'invalid value for {name}: "{raw}"') from None


def _key(e: Entry) -> tuple[str, str]:
    m = e.obj.get("metadata", {})
    return (str(m.get("namespace") or ""), str(m.get("name")))


def _decode_continue(token: str, oldest: int) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["after"]
        rv = int(data["rv"])
        if not (isinstance(after, list) and len(after) == 2):
            raise ValueError(token)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
    if rv < oldest - 1:
        raise gone(
            "The provided continue parameter is too old to display a consistent list result. You can "
            "start a new list without the continue parameter."
        )
    return (str(after[0]), str(after[1]))
