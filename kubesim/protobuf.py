"""Decoding the Kubernetes protobuf encoding for the few kinds kubectl's typed generators send
(`kubectl create namespace | configmap | secret | serviceaccount`), into the JSON kubesim stores.

The wire format is the `k8s\\0` magic, then a `runtime.Unknown` envelope (typeMeta, raw), where raw
is the object's own message. Field numbers are those of k8s.io/api's generated.proto. Any other
kind stays a 415, which names the JSON media types.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    """The body is not a protobuf message kubesim can read."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtobufError("truncated field")
            out.append((number, buf[pos : pos + size]))
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _text(v: int | bytes) -> str:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a string field")
    try:
        return v.decode()
    except UnicodeDecodeError as exc:
        raise ProtobufError("a string field is not UTF-8") from exc


def _msg(v: int | bytes) -> bytes:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a message field")
    return v


def _map_entry(v: int | bytes, binary: bool = False) -> tuple[str, str]:
    key, value = "", ""
    for n, x in fields(_msg(v)):
        if n == 1:
            key = _text(x)
        elif n == 2:
            value = base64.b64encode(_msg(x)).decode() if binary else _text(x)
    return key, value


def _time(v: int | bytes) -> str:
    seconds = 0
    for n, x in fields(_msg(v)):
        if n == 1 and isinstance(x, int):
            seconds = x
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _owner(v: int | bytes) -> dict[str, Any]:
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    out: dict[str, Any] = {}
    for n, x in fields(_msg(v)):
        if n in names:
            out[names[n]] = _text(x)
        elif n in (6, 7):
            out["controller" if n == 6 else "blockOwnerDeletion"] = bool(x)
    return out


def object_meta(buf: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for n, x in fields(buf):
        if n in strings:
            if _text(x):  # Go writes empty strings; its JSON would omit them
                meta[strings[n]] = _text(x)
        elif n in (11, 12):
            k, val = _map_entry(x)
            meta.setdefault("labels" if n == 11 else "annotations", {})[k] = val
        elif n == 13:
            meta.setdefault("ownerReferences", []).append(_owner(x))
        elif n == 14:
            meta.setdefault("finalizers", []).append(_text(x))
        elif n == 8:
            meta["creationTimestamp"] = _time(x)
    return meta


def _configmap(buf: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, x in fields(buf):
        if n == 1:
            out["metadata"] = object_meta(_msg(x))
        elif n in (2, 3):
            k, val = _map_entry(x, binary=n == 3)
            out.setdefault("data" if n == 2 else "binaryData", {})[k] = val
        elif n == 4:
            out["immutable"] = bool(x)
    return out


def _secret(buf: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, x in fields(buf):
        if n == 1:
            out["metadata"] = object_meta(_msg(x))
        elif n in (2, 4):
            k, val = _map_entry(x, binary=n == 2)
            out.setdefault("data" if n == 2 else "stringData", {})[k] = val
        elif n == 3 and _text(x):
            out["type"] = _text(x)
        elif n == 5:
            out["immutable"] = bool(x)
    return out


def _namespace(buf: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, x in fields(buf):
        if n == 1:
            out["metadata"] = object_meta(_msg(x))
        elif n == 2:
            finalizers = [_text(f) for m, f in fields(_msg(x)) if m == 1]
            if finalizers:
                out["spec"] = {"finalizers": finalizers}
    return out


def _service_account(buf: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, x in fields(buf):
        if n == 1:
            out["metadata"] = object_meta(_msg(x))
        elif n == 4:
            out["automountServiceAccountToken"] = bool(x)
        elif n == 3:
            names = [_text(f) for m, f in fields(_msg(x)) if m == 1]
            ref = {"name": names[-1]} if names else {}
            out.setdefault("imagePullSecrets", []).append(ref)
    return out


DECODERS: dict[tuple[str, str], Callable[[bytes], dict[str, Any]]] = {
    ("v1", "ConfigMap"): _configmap,
    ("v1", "Secret"): _secret,
    ("v1", "Namespace"): _namespace,
    ("v1", "ServiceAccount"): _service_account,
}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; ProtobufError when it cannot be read."""
    try:
        return _decode(body)
    except ProtobufError:
        raise
    except (ValueError, OverflowError, OSError) as exc:  # e.g. a timestamp out of range
        raise ProtobufError(f"unreadable protobuf body: {exc}") from exc


def _decode(body: bytes) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    api_version = kind = ""
    raw = b""
    for n, x in fields(body[len(MAGIC) :]):
        if n == 1:
            for m, y in fields(_msg(x)):
                if m == 1:
                    api_version = _text(y)
                elif m == 2:
                    kind = _text(y)
        elif n == 2:
            raw = _msg(x)
    decoder = DECODERS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(
            f"protobuf bodies are read for {sorted(k for _, k in DECODERS)} only, not {kind!r}"
        )
    return {"apiVersion": api_version, "kind": kind, **decoder(raw)}
