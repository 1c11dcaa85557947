"""runtime-config.toml: the parts this runtime uses (variables providers, key-value stores, SQLite
databases)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shim.errors import ManifestError


@dataclass(frozen=True)
class EnvProvider:
    prefix: str = "SPIN_VARIABLE"
    dotenv_path: str | None = None


@dataclass(frozen=True)
class KeyValueStore:
    label: str
    type: str  # "spin" (SQLite) is the only one served; others are refused when opened
    path: str | None = None


@dataclass(frozen=True)
class SqliteDatabase:
    label: str
    type: str  # "spin" (a local file) is the only one served; others are refused when opened
    path: str | None = None


@dataclass(frozen=True)
class RuntimeConfig:
    env_providers: tuple[EnvProvider, ...] = (EnvProvider(),)
    kv_stores: Mapping[str, KeyValueStore] = field(default_factory=dict)
    sqlite_databases: Mapping[str, SqliteDatabase] = field(default_factory=dict)


def load_runtime_config(path: Path | None) -> RuntimeConfig:
    if path is None or not path.exists():
        return RuntimeConfig()
    where = str(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(where, f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(where, f"invalid TOML: {exc}") from exc
    providers: list[EnvProvider] = [EnvProvider()]
    for key in ("variables_provider", "config_provider"):
        for i, p in enumerate(_tables(where, doc, key)):
            if p.get("type") == "env":
                prefix = p.get("prefix", "SPIN_VARIABLE")
                dotenv = p.get("dotenv_path")
                if not isinstance(prefix, str) or (dotenv is not None and not isinstance(dotenv, str)):
                    raise ManifestError(where, "prefix and dotenv_path must be strings", f"{key}[{i}]")
                providers.append(EnvProvider(prefix, dotenv))
    stores = {label: KeyValueStore(*spec) for label, spec in _labelled(where, doc, "key_value_store").items()}
    dbs = {label: SqliteDatabase(*spec) for label, spec in _labelled(where, doc, "sqlite_database").items()}
    return RuntimeConfig(tuple(dict.fromkeys(providers)), stores, dbs)


def _labelled(where: str, doc: dict[str, Any], key: str) -> dict[str, tuple[str, str, str | None]]:
    """`[<key>.<label>]` tables with a string `type` and an optional string `path`."""
    raw: Any = doc.get(key, {})
    if not isinstance(raw, dict):
        raise ManifestError(where, "expected a table", key)
    out: dict[str, tuple[str, str, str | None]] = {}
    for label, table in raw.items():
        if not isinstance(table, dict) or not isinstance(table.get("type"), str):
            raise ManifestError(where, "expected a table with a string `type`", f"{key}.{label}")
        path = table.get("path")
        out[label] = (label, table["type"], path if isinstance(path, str) else None)
    return out


def _tables(where: str, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    raw: Any = doc.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ManifestError(where, "expected an array of tables", key)
    out: list[dict[str, Any]] = raw
    return out
