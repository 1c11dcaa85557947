"""A validated Spin project (manifest v2) → the locked app Spin's loader makes of it, before content.

Follows spin `crates/loader/src/local.rs` (`load_manifest`, `locked_metadata`, `locked_variable`,
`locked_trigger`, `load_component`; spinframework/spin v3.6.3, and the stored local.rs at
02d759ca5afdac0c945e0756d66df7441ac7b488) and the rewrites of `crates/oci/src/client.rs`:

- metadata: `name`, `version`/`description`/`authors` when non-empty, `triggers` (the
  `[application.trigger.<type>]` tables, `{}` when none) and, when the app has one trigger type, `trigger`
  (that type's table plus `type`); no `origin` (the push removes it);
- variables: `description`, `default`, `secret` as written (nothing resolved);
- triggers: in manifest order, each `trigger_config` = its TOML table without `id`/`component`/`components`,
  plus `component` (the id; inline components are lifted under the id Spin's normalizer gives them) or
  `components` (lists of ids);
- components: declared ones in manifest order, then the lifted inline ones; `metadata` holds `description`,
  `allowed_outbound_hosts` (with `allowed_http_hosts` converted), `key_value_stores`, `databases`,
  `ai_models` and `build` (`command` as written, `workdir`, `watch`), each only when set; `env`; `config`
  (the component `variables`, templates kept); `host_requirements` `local_service_chaining: required` (and
  `must_understand: ["component_host_requirements"]` on the app) when an outbound host is `*.spin.internal`.

The component `source` and `files` are filled in by `oci.spinlayout.assemble` from the bytes.
Only manifest v2 is handled; component `dependencies` (which Spin composes into the Wasm) are refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from oci.lockedapp import ContentRef, LockedApp, LockedComponent, LockedTrigger, Variable
from reconciler.publish.errors import PublishError
from renderers.spintoml.model import App, Component

SERVICE_CHAINING_KEY = "local_service_chaining"
COMPONENT_HOST_REQUIREMENTS = "component_host_requirements"
_TRIGGER_OWN_KEYS = frozenset({"id", "component", "components"})


def _json_value(value: Any, where: str) -> Any:
    """A TOML value as serde_json gets it from `toml::Value` (datetimes refused)."""
    if isinstance(value, dict):
        return {str(k): _json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dt.date | dt.time):
        raise PublishError(where, "TOML dates and times cannot be published (Spin stores them privately)")
    return value


def _metadata(app: App) -> dict[str, Any]:
    out: dict[str, Any] = {"name": app.name}
    if app.version:
        out["version"] = app.version
    if app.description:
        out["description"] = app.description
    if app.authors:
        out["authors"] = list(app.authors)
    globals_ = {k: _json_value(v, f"application.trigger.{k}") for k, v in app.trigger_settings.items()}
    out["triggers"] = globals_
    types = list(dict.fromkeys(t.type for t in app.triggers))
    if len(types) == 1:
        out["trigger"] = {**globals_.get(types[0], {}), "type": types[0]}
    return out


def _variables(raw_doc: Mapping[str, Any]) -> dict[str, Variable]:
    out = {}
    for name, spec in (raw_doc.get("variables") or {}).items():
        description, default = spec.get("description"), spec.get("default")
        out[name] = Variable(
            description if isinstance(description, str) else None,
            default if isinstance(default, str) else None,
            spec.get("secret") is True,
        )
    return out


def _triggers(app: App, raw_doc: Mapping[str, Any], rel: str) -> list[LockedTrigger]:
    raw_triggers = raw_doc.get("trigger") or {}
    tables = [(ttype, table) for ttype, items in raw_triggers.items() for table in items]
    if len(tables) != len(app.triggers):  # pragma: no cover - the model is built from the same tables
        raise PublishError(rel, "the triggers of the manifest and of its model disagree")
    out = []
    for trigger, (ttype, table) in zip(app.triggers, tables, strict=True):
        where = f"{rel}: trigger.{ttype} {trigger.id}"
        config = {k: _json_value(v, where) for k, v in table.items() if k not in _TRIGGER_OWN_KEYS}
        if "component" in table:
            config["component"] = trigger.component
        if "components" in table:
            lists: dict[str, list[str]] = {}
            for key, specs in table["components"].items():
                items = specs if isinstance(specs, list) else [specs]
                if not all(isinstance(s, str) for s in items):
                    raise PublishError(where, "inline components inside 'components' cannot be published")
                lists[key] = list(items)
            config["components"] = lists
        out.append(LockedTrigger(trigger.id, ttype, config))
    return out


def _build(raw_component: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = raw_component.get("build")
    if not isinstance(raw, dict):
        return None
    out: dict[str, Any] = {"command": raw.get("command")}
    if isinstance(raw.get("workdir"), str):
        out["workdir"] = raw["workdir"]
    if raw.get("watch"):
        out["watch"] = list(raw["watch"])
    return out


def requires_service_chaining(component: Component) -> bool:
    """Spin's `requires_service_chaining`: an outbound host under `.spin.internal`."""
    for host in component.allowed_outbound_hosts:
        authority = host.split("://", 1)[-1].split("/", 1)[0]
        name = authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
        if name.endswith(".spin.internal"):
            return True
    return False


def _component(cid: str, component: Component, raw_component: Mapping[str, Any]) -> LockedComponent:
    metadata: dict[str, Any] = {}
    if component.description:
        metadata["description"] = component.description
    for key, values in (
        ("allowed_outbound_hosts", component.allowed_outbound_hosts),
        ("key_value_stores", component.key_value_stores),
        ("databases", component.sqlite_databases),
        ("ai_models", component.ai_models),
    ):
        if values:
            metadata[key] = list(values)
    build = _build(raw_component)
    if build is not None:
        metadata["build"] = build
    host_requirements = {SERVICE_CHAINING_KEY: "required"} if requires_service_chaining(component) else {}
    return LockedComponent(
        id=cid,
        source=ContentRef(),
        metadata=metadata,
        env=dict(component.environment),
        config=dict(component.variables),
        host_requirements=host_requirements,
    )


def _raw_component(app: App, raw_doc: Mapping[str, Any], cid: str) -> Mapping[str, Any]:
    declared = (raw_doc.get("component") or {}).get(cid)
    if isinstance(declared, dict):
        return declared
    for trigger, (_, table) in zip(
        app.triggers,
        [(t, tbl) for t, items in (raw_doc.get("trigger") or {}).items() for tbl in items],
        strict=True,
    ):
        if trigger.component == cid and isinstance(table.get("component"), dict):
            inline: Mapping[str, Any] = table["component"]
            return inline
    return {}


def locked_app(app: App, raw_doc: Mapping[str, Any], rel: str) -> LockedApp:
    """The locked app of a valid manifest-v2 project at repo path `rel` (component content left empty)."""
    if app.manifest_version != 2:
        raise PublishError(
            rel, "only spin_manifest_version = 2 projects can be published (run `spin doctor`)"
        )
    components = []
    for cid, component in app.components.items():
        if component.dependencies:
            raise PublishError(
                f"{rel}: component {cid!r}", "component dependencies need Spin's composition; not supported"
            )
        components.append(_component(cid, component, _raw_component(app, raw_doc, cid)))
    must_understand = (COMPONENT_HOST_REQUIREMENTS,) if any(c.host_requirements for c in components) else ()
    return LockedApp(
        triggers=tuple(_triggers(app, raw_doc, rel)),
        components=tuple(components),
        metadata=_metadata(app),
        variables=_variables(raw_doc),
        must_understand=must_understand,
    )
