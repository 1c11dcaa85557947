"""Label and field selectors as the API server parses them (pure).

Label selectors: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k`, joined
by commas. Field selectors: `metadata.name` and `metadata.namespace` with `=`, `==`, `!=`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from kubesim.errors import ApiError, bad_request
from kubesim.resources import ResourceType

Predicate = Callable[[Mapping[str, str]], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_TERM = re.compile(
    rf"""\s*(?:
        (?P<notkey>!\s*(?P<nk>{_KEY}))
      | (?P<setkey>{_KEY})\s+(?P<op>in|notin)\s*\((?P<vals>[^)]*)\)
      | (?P<eqkey>{_KEY})\s*(?P<eq>==|!=|=)\s*(?P<val>{_VALUE})
      | (?P<exkey>{_KEY})
    )\s*(?:,|$)""",
    re.VERBOSE,
)


def parse_labels(selector: str) -> Predicate:
    """Compile a label selector; raises a 400 naming the selector when it does not parse."""
    checks: list[Predicate] = []
    pos, text = 0, selector.strip()
    while pos < len(text):
        m = _TERM.match(text, pos)
        if not m or m.end() == pos:
            raise _bad("labelSelector", selector)
        pos = m.end()
        checks.append(_term(m, selector))
    return lambda labels: all(c(labels) for c in checks)


def _term(m: re.Match[str], selector: str) -> Predicate:
    if m.group("notkey"):
        key = m.group("nk")
        return lambda labels: key not in labels
    if m.group("setkey"):
        key, op = m.group("setkey"), m.group("op")
        values = {v.strip() for v in m.group("vals").split(",")}
        if not all(re.fullmatch(_VALUE, v) for v in values):
            raise _bad("labelSelector", selector)
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m.group("eqkey"):
        key, val = m.group("eqkey"), m.group("val") or ""
        if m.group("eq") == "!=":
            return lambda labels: labels.get(key) != val
        return lambda labels: labels.get(key) == val
    key = m.group("exkey")
    return lambda labels: key in labels


FIELDS = ("metadata.name", "metadata.namespace")

# The extra selectable fields of the built-ins (the real server's per-kind field label lists).
KIND_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Event"): (
        *tuple(
            f"involvedObject.{f}"
            for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        ),
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("", "Pod"): (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    ("", "Secret"): ("type",),
    ("", "Namespace"): ("status.phase",),
    ("", "Node"): ("spec.unschedulable",),
    ("", "Service"): ("spec.clusterIP", "spec.type"),
    ("batch", "Job"): ("status.successful",),
    ("apps", "Deployment"): (),
}


def parse_fields(selector: str, extra: tuple[str, ...] = ()) -> Callable[[Mapping[str, Any]], bool]:
    """Compile a field selector over metadata.name / metadata.namespace and the kind's extra fields."""
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for raw in selector.split(","):
        term = raw.strip()
        if not term:
            continue
        m = re.fullmatch(r"([A-Za-z.]+)\s*(==|!=|=)\s*(.*)", term)
        if not m:
            raise _bad("fieldSelector", selector)
        path, op, want = m.group(1), m.group(2), m.group(3).strip()
        if path not in FIELDS and path not in extra:
            raise bad_request(f"field label not supported: {path}")
        checks.append(_field_check(tuple(path.split(".")), op != "!=", want))
    return lambda obj: all(c(obj) for c in checks)


def _field_check(path: tuple[str, ...], equal: bool, want: str) -> Callable[[Mapping[str, Any]], bool]:
    def check(obj: Mapping[str, Any]) -> bool:
        cur: Any = obj
        for part in path:
            cur = cur.get(part) if isinstance(cur, Mapping) else None
        if isinstance(cur, bool):
            have = "true" if cur else "false"
        elif cur is None:
            have = ""
        elif isinstance(cur, dict):  # e.g. an Event's source: its component
            have = str(cur.get("component", ""))
        else:
            have = str(cur)
        return (have == want) == equal

    return check


def _bad(param: str, selector: str) -> ApiError:
    return bad_request(f'unable to parse requirement: invalid {param} "{selector}"')


def selectable_fields(rtype: ResourceType) -> tuple[str, ...]:
    """A built-in's extra field labels, or the jsonPaths a CRD version declares selectable."""
    if rtype.crd:
        return tuple(str(f.get("jsonPath", "")).lstrip(".") for f in rtype.selectable_fields)
    return KIND_FIELDS.get((rtype.group, rtype.kind), ())
