"""Request bodies: media types, JSON/YAML/protobuf decoding into JSON objects, the apiVersion/kind
check against the URL, and server-side field validation (pure apart from the schemas it reads)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import yaml

from kubesim import fields, protobuf, validation
from kubesim.calls import Call
from kubesim.errors import ApiError, bad_request, unsupported_media_type
from kubesim.resources import ResourceType
from kubesim.validation import Decoded

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
PATCH_TYPES = [JSON_PATCH, MERGE, APPLY]
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", APPLY)

try:  # the C loader is ~10x faster; fall back when PyYAML was built without libyaml
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _YamlLoader = yaml.SafeLoader
_YamlDupLoader = validation.yaml_duplicates(_YamlLoader)


BODY_TYPES = ["application/json", "application/yaml"]


def read_body(call: Call) -> Decoded:
    """A create/update body: JSON, YAML, or protobuf for the kinds kubectl's typed generators send
    that way (`kubesim.protobuf.KINDS`); else a 415."""
    if call.content_type == protobuf.MEDIA_TYPE:
        try:
            return Decoded(protobuf.decode(call.body))
        except protobuf.NotRead as exc:
            raise ApiError(415, "UnsupportedMediaType", f"{exc}; send {', '.join(BODY_TYPES)}") from None
        except protobuf.ProtobufError as exc:
            raise bad_request(f"the protobuf body could not be decoded: {exc}") from None
    if call.content_type not in ("", *BODY_TYPES, "text/plain"):
        raise unsupported_media_type(call.content_type, BODY_TYPES)
    return decode_body(call.body, allow_yaml=call.content_type in YAML_TYPES)


def decode(body: bytes, *, allow_yaml: bool) -> dict[str, Any]:
    """Parse a request body into an object; a client's malformed document is a 400, never a 500."""
    obj: dict[str, Any] = decode_body(body, allow_yaml=allow_yaml).obj
    return obj


def decode_body(body: bytes, *, allow_yaml: bool, want_object: bool = True) -> Decoded:
    """Parse a request body, noting repeated keys (`kubesim.validation`); 400 when unreadable."""
    if not body.strip():
        raise bad_request("the body of the request was empty")
    try:
        decoded = validation.loads_json(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        if not allow_yaml:
            raise bad_request(f"the body of the request could not be decoded as JSON: {exc}") from None
        loader = _YamlDupLoader(body)
        try:
            decoded = Decoded(_jsonable(loader.get_single_data()), loader.duplicates, yaml=True)
        except (yaml.YAMLError, ValueError, RecursionError) as yexc:
            raise bad_request(f"error decoding YAML: {yexc}") from None
        finally:
            loader.dispose()
    if not want_object:
        return decoded
    obj = decoded.obj
    if not isinstance(obj, dict):
        raise bad_request(f"the body of the request must be a JSON object, not {type(obj).__name__}")
    if not isinstance(obj.get("metadata", {}), dict):
        raise bad_request("metadata must be an object")
    return decoded


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON number {name}")


def _jsonable(value: Any) -> Any:
    """YAML → what sigs.k8s.io/yaml makes of it: JSON types only (timestamps become strings)."""
    if isinstance(value, dict):
        return {_key_text(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinite numbers are not valid JSON")
        return value
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return stamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%dT00:00:00Z")
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, set):
        return {_key_text(k): None for k in value}
    raise ValueError(f"unsupported YAML value of type {type(value).__name__}")


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int | float):
        return str(key)
    raise ValueError(f"unsupported YAML mapping key of type {type(key).__name__}")


def check_gvk(rtype: ResourceType, obj: dict[str, Any]) -> None:
    version, kind = obj.get("apiVersion"), obj.get("kind")
    if version is not None and version != rtype.api_version:
        raise bad_request(
            f"the API version in the data ({version}) does not match the expected API version "
            f"({rtype.api_version})"
        )
    if kind is not None and kind != rtype.kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})")


def field_validation(call: Call, decoded: Decoded, obj: dict[str, Any]) -> list[str]:
    """Types first (a 400, as Go decoding), then fieldValidation (`kubesim.validation`)."""
    fields.check_types(call.rtype, obj)
    return validation.check_object(call, decoded, obj)
