"""Object metadata rules (pure): names, labels, timestamps, generation, JSON merge patch."""

from __future__ import annotations

import copy
import datetime as dt
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from kubesim.errors import Cause, bad_value, required

_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    r"is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
# generateName suffix alphabet of the real server (no vowels, no confusable digits).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC)."""
    global _NOW
    second = int(time.time())
    cached = _NOW  # one tuple: threads see the old pair or the new one, never half of each
    if cached[0] != second:  # formatted once a second: every write stamps one or more times
        cached = _NOW = (second, dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return cached[1]


_NOW: tuple[int, str] = (-1, "")


def generated_name(prefix: str) -> str:
    return prefix[:58] + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_RULES = {
    "subdomain": (_DNS1123_SUBDOMAIN, _SUBDOMAIN_MSG, 253),
    "label": (_DNS1123_LABEL, _LABEL_MSG, 63),
    "dns1035": (_DNS1035_LABEL, _DNS1035_MSG, 63),
}


def validate_name(name: str, *, rule: str = "subdomain", path: str = "metadata.name") -> list[Cause]:
    """Names are DNS-1123 subdomains, except Namespaces (DNS-1123 labels), Services (DNS-1035) and
    RBAC objects (path segments: `system:basic-user`)."""
    if not name:
        return [required(path, "name or generateName is required")]
    if rule == "path":  # RBAC objects: any path segment (ValidatePathSegmentName)
        if name in (".", ".."):
            return [bad_value(path, name, f"may not be '{name}'")]
        return [bad_value(path, name, f"may not contain '{c}'") for c in "/%" if c in name]
    pattern, msg, limit = NAME_RULES[rule]
    causes = []
    if len(name) > limit:
        causes.append(bad_value(path, name, f"must be no more than {limit} characters"))
    if not pattern.fullmatch(name):
        causes.append(bad_value(path, name, msg))
    return causes


def validate_metadata(meta: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            causes.append(
                bad_value(f"metadata.{field}", value, "must be a map of string keys to string values")
            )
            continue
        if field == "labels":
            causes.extend(_validate_labels(value))
    for field in ("finalizers",):
        value = meta.get(field)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            causes.append(bad_value(f"metadata.{field}", value, "must be a list of strings"))
    refs = meta.get("ownerReferences")
    if refs is not None:
        if not isinstance(refs, list):
            causes.append(bad_value("metadata.ownerReferences", refs, "must be a list"))
        else:
            for i, ref in enumerate(refs):
                for key in ("apiVersion", "kind", "name", "uid"):
                    if not isinstance(ref, dict) or not ref.get(key):
                        causes.append(required(f"metadata.ownerReferences[{i}].{key}", "must be set"))
    return causes


def _validate_labels(labels: dict[str, str]) -> list[Cause]:
    causes = []
    for key, value in labels.items():
        name = key.rsplit("/", 1)[-1]
        prefix = key[: -len(name) - 1] if "/" in key else ""
        if (
            not name
            or len(name) > 63
            or not _LABEL_NAME.fullmatch(name)
            or (prefix and not _DNS1123_SUBDOMAIN.fullmatch(prefix))
        ):
            causes.append(
                bad_value(
                    "metadata.labels",
                    key,
                    "name part must consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character",
                )
            )
        if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
            causes.append(
                bad_value(
                    "metadata.labels",
                    value,
                    "a valid label must be an empty string or "
                    "consist of alphanumeric characters, '-', '_' or '.', and must start "
                    "and end with an alphanumeric character",
                )
            )
    return causes


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def same_but_managed_times(new: dict[str, Any], live: dict[str, Any]) -> bool:
    """apiserver's IgnoreManagedFieldsTimestampsTransformer: a write whose only change is the time of
    some managedFields entries is no change at all (the old times stay, nothing is written)."""
    nm, lm = new.get("metadata"), live.get("metadata")
    if not isinstance(nm, dict) or not isinstance(lm, dict):
        return False
    nf, lf = nm.get("managedFields"), lm.get("managedFields")
    if not isinstance(nf, list) or not isinstance(lf, list) or len(nf) != len(lf):
        return False
    for a, b in zip(nf, lf, strict=True):
        if not isinstance(a, dict) or not isinstance(b, dict):
            return False
        if a.keys() - {"time"} != b.keys() - {"time"} or any(a[k] != b[k] for k in a if k != "time"):
            return False
    return without(new, "metadata") == without(live, "metadata") and without(nm, "managedFields") == without(
        lm, "managedFields"
    )


def spec_changed(old: dict[str, Any], new: dict[str, Any], *, ignore_status: bool = True) -> bool:
    """Anything but metadata (and status) differs: that is what bumps metadata.generation."""
    skip = ("metadata", "status") if ignore_status else ("metadata", "apiVersion")
    return without(old, *skip, "apiVersion") != without(new, *skip, "apiVersion")


def walk(obj: Any, fn: Callable[[Any], None]) -> None:
    fn(obj)
    if isinstance(obj, dict):
        for v in obj.values():
            walk(v, fn)
    elif isinstance(obj, list):
        for v in obj:
            walk(v, fn)


def get_path(obj: Any, path: str) -> Any:
    """The value at a `.a.b` path (the JSONPath subset of scale subresource paths), or None."""
    cur = obj
    for part in [p for p in path.split(".") if p]:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = [p for p in path.split(".") if p]
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value
