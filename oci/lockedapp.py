"""Spin's locked application (`spin.lock`, the `+config` layer of a Spin OCI artifact), byte for byte.

The types mirror spin `crates/locked-app/src/locked.rs` as Spin 3.x serializes them with
`serde_json::to_vec` (compact; spinframework/spin v3.6.3, commit 88d51cf1dafa23c4177f5fbf122b3beca46d1941,
read through /work/shared/reference/spin-oci-layout.md §4, and the stored `crates/locked-app/src/locked.rs`
at 27451471b8ba0faeffa01c5a4ddd6daee9a9d526):

- struct fields in declaration order, optional ones left out when empty (`LockedApp`: spin_lock_version,
  must_understand?, metadata?, host_requirements?, variables?, triggers, components; `LockedComponent`: id,
  metadata?, source, env?, files?, config?, host_requirements?; `ContentRef`: source?, inline?, digest?);
- every `serde_json::Value` / `BTreeMap` object (metadata, trigger_config, env, config, variables) in sorted
  key order, since Spin builds serde_json without `preserve_order`;
- `spin_lock_version` 0 unless `must_understand` or `host_requirements` is non-empty (then 1);
- `inline` is standard base64 without padding (`spin_serde::base64`);
- strings escaped as serde_json does (`"`, `\\`, `\\b \\f \\n \\r \\t`, other control bytes `\\u00xx`,
  non-ASCII raw); floats laid out as ryu does (`1e16`, `0.00001`, `1.5e-7`), NaN and infinities as `null`.

`dumps` writes that form; `parse` reads any locked app Spin 3.x writes (unknown fields ignored), for the
runtime that serves a pulled artifact.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oci.errors import LayoutError

WASM_CONTENT_TYPE = "application/wasm"


@dataclass(frozen=True)
class ContentRef:
    """Content by URL (`source`), by value (`inline`) and/or by `digest` (`sha256:<hex>`)."""

    source: str | None = None
    inline: bytes | None = None
    digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.source is not None:
            out["source"] = self.source
        if self.inline is not None:
            out["inline"] = base64.b64encode(self.inline).decode("ascii").rstrip("=")
        if self.digest is not None:
            out["digest"] = self.digest
        return out


@dataclass(frozen=True)
class ContentPath:
    """A file the guest sees at `path` (relative, `/`-separated)."""

    content: ContentRef
    path: str

    def to_json(self) -> dict[str, Any]:
        return {**self.content.to_json(), "path": self.path}


@dataclass(frozen=True)
class Variable:
    description: str | None = None
    default: str | None = None
    secret: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description is not None:
            out["description"] = self.description
        if self.default is not None:
            out["default"] = self.default
        if self.secret:
            out["secret"] = True
        return out


@dataclass(frozen=True)
class LockedTrigger:
    id: str
    trigger_type: str
    trigger_config: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trigger_type": self.trigger_type,
            "trigger_config": sorted_value(self.trigger_config),
        }


@dataclass(frozen=True)
class LockedComponent:
    id: str
    source: ContentRef
    content_type: str = WASM_CONTENT_TYPE
    metadata: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    files: tuple[ContentPath, ...] = ()
    config: Mapping[str, str] = field(default_factory=dict)
    host_requirements: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.metadata:
            out["metadata"] = sorted_value(self.metadata)
        out["source"] = {"content_type": self.content_type, **self.source.to_json()}
        if self.env:
            out["env"] = sorted_value(self.env)
        if self.files:
            out["files"] = [f.to_json() for f in self.files]
        if self.config:
            out["config"] = sorted_value(self.config)
        if self.host_requirements:
            out["host_requirements"] = sorted_value(self.host_requirements)
        return out


@dataclass(frozen=True)
class LockedApp:
    triggers: tuple[LockedTrigger, ...]
    components: tuple[LockedComponent, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Variable] = field(default_factory=dict)
    must_understand: tuple[str, ...] = ()
    host_requirements: Mapping[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return 1 if self.must_understand or self.host_requirements else 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"spin_lock_version": self.version}
        if self.must_understand:
            out["must_understand"] = list(self.must_understand)
        if self.metadata:
            out["metadata"] = sorted_value(self.metadata)
        if self.host_requirements:
            out["host_requirements"] = sorted_value(self.host_requirements)
        if self.variables:
            out["variables"] = {name: self.variables[name].to_json() for name in sorted(self.variables)}
        out["triggers"] = [t.to_json() for t in self.triggers]
        out["components"] = [c.to_json() for c in self.components]
        return out

    def dumps(self) -> bytes:
        """The exact bytes `serde_json::to_vec(&locked_app)` gives."""
        return serde_json(self.to_json()).encode("utf-8")


# --- serde_json's output --------------------------------------------------------------------------------


def sorted_value(value: Any) -> Any:
    """A JSON value with every object's keys sorted (serde_json `Map` without `preserve_order`)."""
    if isinstance(value, Mapping):
        return {str(k): sorted_value(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [sorted_value(v) for v in value]
    return value


def ryu_float(value: float) -> str:
    """`value` as serde_json writes an f64 (ryu's shortest digits and layout); non-finite is `null`."""
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    text = repr(value)
    sign = "-" if text.startswith("-") else ""
    text = text.lstrip("-")
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, fraction = mantissa.partition(".")
    raw = (whole + fraction).lstrip("0")
    digits = raw.rstrip("0")
    k = exponent - len(fraction) + (len(raw) - len(digits))
    length = len(digits)
    kk = length + k  # the decimal point sits after `kk` digits
    if k >= 0 and kk <= 16:
        body = digits + "0" * k + ".0"
    elif 0 < kk <= 16:
        body = digits[:kk] + "." + digits[kk:]
    elif -5 < kk <= 0:
        body = "0." + "0" * -kk + digits
    elif length == 1:
        body = f"{digits}e{kk - 1}"
    else:
        body = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return sign + body


def serde_json(value: Any) -> str:
    """Compact JSON as serde_json writes it; objects keep the order given (sort with `sorted_value`)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return ryu_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{serde_json(str(k))}:{serde_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(serde_json(v) for v in value) + "]"
    raise TypeError(f"{type(value).__name__} is not a JSON value")


# --- reading --------------------------------------------------------------------------------------------


def _decode_inline(text: Any, where: str) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise LayoutError(where, "'inline' is not a base64 string")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise LayoutError(where, "'inline' is not valid base64") from None


def _content_ref(raw: Mapping[str, Any], where: str) -> ContentRef:
    source, digest = raw.get("source"), raw.get("digest")
    return ContentRef(
        source if isinstance(source, str) else None,
        _decode_inline(raw.get("inline"), where),
        digest if isinstance(digest, str) else None,
    )


def _strings(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise LayoutError(where, "expected a map of strings")
    return dict(raw)


def _object(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LayoutError(where, "expected a JSON object")
    return raw


def parse(data: bytes, where: str = "locked app") -> LockedApp:
    """Read a locked app (any Spin 3.x lock version); LayoutError names `where` and the field."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(where, f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or "spin_lock_version" not in doc:
        raise LayoutError(where, "not a Spin locked app (no spin_lock_version)")
    triggers = []
    for i, raw in enumerate(doc.get("triggers") or []):
        at = f"{where}: triggers[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise LayoutError(at, "a trigger needs an id")
        ttype = raw.get("trigger_type")
        triggers.append(LockedTrigger(raw["id"], str(ttype), _object(raw.get("trigger_config"), at)))
    components = []
    for i, raw in enumerate(doc.get("components") or []):
        at = f"{where}: components[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise LayoutError(at, "a component needs an id")
        source = _object(raw.get("source"), f"{at}.source")
        files = []
        for j, item in enumerate(raw.get("files") or []):
            fat = f"{at}.files[{j}]"
            if not isinstance(item, dict) or not isinstance(item.get("path"), str):
                raise LayoutError(fat, "a file needs a path")
            files.append(ContentPath(_content_ref(item, fat), item["path"]))
        components.append(
            LockedComponent(
                id=raw["id"],
                source=_content_ref(source, f"{at}.source"),
                content_type=str(source.get("content_type") or WASM_CONTENT_TYPE),
                metadata=_object(raw.get("metadata"), f"{at}.metadata"),
                env=_strings(raw.get("env"), f"{at}.env"),
                files=tuple(files),
                config=_strings(raw.get("config"), f"{at}.config"),
                host_requirements=_object(raw.get("host_requirements"), f"{at}.host_requirements"),
            )
        )
    variables = {}
    for name, raw in _object(doc.get("variables"), f"{where}: variables").items():
        spec = _object(raw, f"{where}: variables.{name}")
        default, description = spec.get("default"), spec.get("description")
        variables[name] = Variable(
            description if isinstance(description, str) else None,
            default if isinstance(default, str) else None,
            spec.get("secret") is True,
        )
    must = doc.get("must_understand") or []
    return LockedApp(
        triggers=tuple(triggers),
        components=tuple(components),
        metadata=_object(doc.get("metadata"), f"{where}: metadata"),
        variables=variables,
        must_understand=tuple(str(m) for m in must) if isinstance(must, list) else (),
        host_requirements=_object(doc.get("host_requirements"), f"{where}: host_requirements"),
    )
