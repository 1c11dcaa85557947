"""What a SpinApp's pass-through fields look like after spin-operator's round trip through the
Go `corev1` types: the operator decodes the SpinApp into Go structs and serialises the
Deployment back, so `omitempty` zero values disappear and quantities take their canonical form
(`0.5` → `500m`, `1.5Gi` → `1536Mi`). Rendering the user's text verbatim would show as drift
against the live Deployment forever.

Covered: env `valueFrom`, `imagePullSecrets`, `volumeMounts`, container `resources`, and
quantities inside volumes (`emptyDir.sizeLimit`). Other volume fields pass through as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from renderers.model import Obj
from renderers.quantity import QuantityError, canonical_quantity


def quantity(value: Any) -> Any:
    try:
        return canonical_quantity(value)
    except (QuantityError, TypeError):
        return value  # schema validation reports it; keep the user's text


def local_object_reference(ref: Mapping[str, Any]) -> Obj:
    # LocalObjectReference.Name is `omitempty`: the CRD default "" disappears again.
    return {"name": ref["name"]} if ref.get("name") else {}


def _key_selector(ref: Mapping[str, Any]) -> Obj:
    out = local_object_reference(ref)
    out["key"] = ref.get("key", "")
    if ref.get("optional") is not None:
        out["optional"] = ref["optional"]
    return out


def env_var_source(source: Mapping[str, Any]) -> Obj:
    out: Obj = {}
    field_ref = source.get("fieldRef")
    if field_ref is not None:
        out["fieldRef"] = {k: field_ref[k] for k in ("apiVersion", "fieldPath") if field_ref.get(k)}
    resource_ref = source.get("resourceFieldRef")
    if resource_ref is not None:
        ref: Obj = {k: resource_ref[k] for k in ("containerName", "resource") if resource_ref.get(k)}
        # Divisor is a Quantity value (not a pointer): `omitempty` cannot drop it, so "0".
        ref["divisor"] = quantity(resource_ref.get("divisor", 0))
        out["resourceFieldRef"] = ref
    for name in ("configMapKeyRef", "secretKeyRef"):
        if source.get(name) is not None:
            out[name] = _key_selector(source[name])
    return out


def volume_mount(mount: Mapping[str, Any]) -> Obj:
    out: Obj = {}
    for key, value in mount.items():
        if key in ("readOnly", "subPath", "subPathExpr") and not value:
            continue  # omitempty value fields; the pointers (recursiveReadOnly, ...) stay
        out[key] = value
    return out


def resources(spec_resources: Mapping[str, Any]) -> Obj:
    return {
        kind: {name: quantity(value) for name, value in spec_resources[kind].items()}
        for kind in ("limits", "requests")
        if spec_resources.get(kind)
    }


def volume(vol: Mapping[str, Any]) -> Obj:
    out = dict(vol)
    empty_dir = vol.get("emptyDir")
    if isinstance(empty_dir, dict) and "sizeLimit" in empty_dir:
        out["emptyDir"] = {**empty_dir, "sizeLimit": quantity(empty_dir["sizeLimit"])}
    return out
