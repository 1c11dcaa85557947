"""The runtime-config Secret spin-operator generates for a SpinApp.

The operator reads `valueFrom` references live from the cluster when it reconciles. spindle
renders without a cluster, so it resolves each reference through a `ValueLookup`: by default
the Secrets and ConfigMaps committed in the same repo (same namespace). A reference it cannot
resolve is an `UnresolvedReferenceError` naming the option and the missing object or key,
rather than a guessed value: a wrong value would produce a different TOML, so a different
Secret name, and a Deployment that silently diverges from what the operator would run. (The
operator itself fails the reconcile when a referenced object is missing; for a missing key it
writes an empty string, which spindle reports as an error instead.) The reconciler can pass a
lookup that falls back to live objects.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from renderers.errors import UnresolvedReferenceError
from renderers.model import Obj, SourceDoc
from renderers.spinapp import gotoml

RUNTIME_CONFIG_KEY = "runtime-config.toml"
ENV_PREFIX = "SPIN_VARIABLE_"


class ValueLookup(Protocol):
    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The Secret / ConfigMap `namespace/name`, or None."""


class ObjectIndex:
    """A `ValueLookup` over objects in the repo; namespace-less objects count as `default_ns`."""

    def __init__(self, objects: Iterable[Obj], default_ns: str) -> None:
        self._by_key: dict[tuple[str, str, str], Obj] = {}
        for obj in objects:
            kind = obj.get("kind")
            if kind not in ("Secret", "ConfigMap") or obj.get("apiVersion") != "v1":
                continue
            meta = obj.get("metadata") or {}
            self._by_key[(kind, meta.get("namespace") or default_ns, str(meta.get("name", "")))] = obj

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._by_key.get((kind, namespace, name))


def _section(obj: Obj, name: str) -> Mapping[str, Any]:
    section = obj.get(name)
    return section if isinstance(section, dict) else {}


def _decode(value: Any) -> str | None:
    """Base64 data as text; None when it is not base64 of UTF-8 (the TOML must be UTF-8)."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None


def _data_value(obj: Obj, key: str) -> str | None:
    """A key's text from a ConfigMap (data, binaryData) or a Secret (stringData, base64 data);
    None when it is missing, not a string, or not UTF-8."""
    if obj.get("kind") == "Secret":
        text = _section(obj, "stringData").get(key)
        return text if isinstance(text, str) else _decode(_section(obj, "data").get(key))
    text = _section(obj, "data").get(key)
    return text if isinstance(text, str) else _decode(_section(obj, "binaryData").get(key))


class _Builder:
    def __init__(self, doc: SourceDoc, namespace: str, lookup: ValueLookup) -> None:
        self.doc = doc
        self.namespace = namespace
        self.lookup = lookup
        self.errors: list[UnresolvedReferenceError] = []

    def _resolve(self, option: Mapping[str, Any], path: str) -> str:
        value = option.get("value") or ""
        if value:
            return str(value)
        source = option.get("valueFrom") or {}
        for ref_field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = source.get(ref_field)
            if not ref:
                continue
            name, key = str(ref.get("name", "")), str(ref.get("key", ""))
            ref_path = f"{path}.valueFrom.{ref_field}"
            obj = self.lookup.get(kind, self.namespace, name)
            if obj is None:
                self._error(
                    f"{kind} {self.namespace}/{name} is not in the repo (needed for option "
                    f"{option.get('name')!r})",
                    ref_path + ".name",
                )
                return ""
            resolved = _data_value(obj, key)
            if resolved is None:
                self._error(
                    f"{kind} {self.namespace}/{name} has no key {key!r} holding UTF-8 text "
                    f"(needed for option {option.get('name')!r})",
                    ref_path + ".key",
                )
                return ""
            return resolved
        return ""

    def _error(self, message: str, path: str) -> None:
        self.errors.append(UnresolvedReferenceError(message, self.doc.at(path), self.doc.subject))

    def options(self, type_: str, options: list[Mapping[str, Any]], path: str) -> dict[str, str]:
        # As the operator: `type` first, then every option (an option named `type` wins).
        values = {"type": type_}
        for i, option in enumerate(options or []):
            values[str(option.get("name", ""))] = self._resolve(option, f"{path}.options[{i}]")
        return values

    def stores(self, entries: list[Mapping[str, Any]], path: str, what: str) -> dict[str, dict[str, str]]:
        stores: dict[str, dict[str, str]] = {}
        for i, entry in enumerate(entries or []):
            name = str(entry.get("name", ""))
            if name in stores:
                self._error(f"duplicate definition for {what} with name: {name}", f"{path}[{i}].name")
                continue
            stores[name] = self.options(
                str(entry.get("type", "")), entry.get("options") or [], f"{path}[{i}]"
            )
        return stores


def build(
    doc: SourceDoc, spec: Mapping[str, Any], namespace: str, lookup: ValueLookup
) -> tuple[bytes | None, list[UnresolvedReferenceError]]:
    """The runtime-config TOML bytes the operator would generate (None with `loadFromSecret`)."""
    config = spec.get("runtimeConfig") or {}
    if config.get("loadFromSecret"):
        return None, []
    builder = _Builder(doc, namespace, lookup)
    provider = gotoml.Table(kvs=[("type", "env"), ("prefix", ENV_PREFIX)])
    tables: list[tuple[str, gotoml.Table | list[gotoml.Table]]] = [("config_provider", [provider])]
    kv = builder.stores(
        config.get("keyValueStores") or [], "spec.runtimeConfig.keyValueStores", "key value store"
    )
    if kv:
        tables.append(("key_value_store", gotoml.Table.of_maps(kv)))
    sqlite = builder.stores(
        config.get("sqliteDatabases") or [], "spec.runtimeConfig.sqliteDatabases", "sqlite database"
    )
    if sqlite:
        tables.append(("sqlite_database", gotoml.Table.of_maps(sqlite)))
    llm = config.get("llmCompute")
    if llm:
        options = builder.options(
            str(llm.get("type", "")), llm.get("options") or [], "spec.runtimeConfig.llmCompute"
        )
        tables.append(("llm_compute", gotoml.Table.from_map(options)))
    return gotoml.marshal(gotoml.Table(tables=tables)), builder.errors


def secret_name(app: str, toml: bytes) -> str:
    """`<app>-<adler32 as lowercase hex, no padding>` (Go's `%x`)."""
    return f"{app}-{zlib.adler32(toml):x}"
