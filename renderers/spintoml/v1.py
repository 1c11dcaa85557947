"""Manifest v1 → the v2 model, as Spin's compat layer does.

v1 differs from v2: `spin_manifest_version = "1"` (a string; the old key `spin_version` also
works), name/version/description/authors at the top level, one `trigger = { type, base? }` for the
whole app, `[[component]]` as an array with an `id` each, the route/channel/executor in each
component's `[component.trigger]` table, and `config` instead of `variables`. As in Spin's
conversion: component ids in snake_case or mixed case are turned into kebab-case, each trigger's
id is `trigger-<component>`, `allowed_http_hosts` become outbound hosts, and a component without
`allowed_outbound_hosts` keeps v1's access to every Redis, MySQL and Postgres host. The app's
trigger settings become `[application.trigger.<type>]`, where Spin 3 rejects an HTTP `base`
other than "/". Errors point at the v1 keys in the file.
"""

from __future__ import annotations

from typing import Any

from renderers.spintoml import rules
from renderers.spintoml.checker import COMPONENT_KEYS_V2, TRIGGER_KEYS, Checker
from renderers.spintoml.lines import Path
from renderers.spintoml.model import App, Component, Trigger

TOP_KEYS_V1 = frozenset(
    {
        "spin_manifest_version",
        "spin_version",
        "name",
        "version",
        "description",
        "authors",
        "trigger",
        "variables",
        "component",
    }
)
COMPONENT_KEYS_V1 = (
    COMPONENT_KEYS_V2 - {"variables", "targets", "tool", "dependencies", "dependencies_inherit_configuration"}
) | {"id", "trigger", "config"}
APP_TRIGGER_KEYS = {"http": frozenset({"type", "base"}), "redis": frozenset({"type", "address"})}


def check_v1(doc: dict[str, Any], checker: Checker) -> App | None:
    checker.unknown_keys(doc, TOP_KEYS_V1, (), "the manifest")
    name = checker.string(doc.get("name"), ("name",), required=True)
    version = checker.string(doc.get("version"), ("version",)) or ""
    description = checker.string(doc.get("description"), ("description",)) or ""
    authors = checker.strings(doc.get("authors"), ("authors",))
    variables = checker.variables(doc.get("variables"), ("variables",))

    app_trigger = checker.table(doc.get("trigger"), ("trigger",), "trigger") or {}
    if not app_trigger:
        checker.error(("trigger",), "missing required key 'trigger' (e.g. trigger = { type = \"http\" })")
    ttype = checker.string(app_trigger.get("type"), ("trigger", "type"), required=bool(app_trigger)) or ""
    if ttype in APP_TRIGGER_KEYS:
        checker.unknown_keys(app_trigger, APP_TRIGGER_KEYS[ttype], ("trigger",), "trigger")
    if ttype == "http":
        base = checker.string(app_trigger.get("base"), ("trigger", "base"))
        if base not in (None, "/"):
            checker.error(
                ("trigger", "base"),
                f"the HTTP 'base' setting is no longer supported (got {base!r}); "
                "only '/' is accepted: put the prefix in each route",
            )

    raw_components = doc.get("component")
    if raw_components is not None and not isinstance(raw_components, list):
        checker.error(("component",), "component must be an array of tables ([[component]]) in manifest v1")
        raw_components = []
    components: dict[str, Component] = {}
    triggers: list[tuple[Trigger, Path]] = []
    for i, raw in enumerate(raw_components or []):
        cpath: Path = ("component", i)
        table = checker.table(raw, cpath, "a [[component]] entry")
        if table is None:
            continue
        written = checker.string(table.get("id"), (*cpath, "id"), required=True)
        if written is None:
            continue
        # Spin fixes the two likely slips (snake_case, MixedCase) before requiring kebab-case.
        cid = written if rules.kebab_problem(written) is None else written.replace("_", "-").lower()
        problem = rules.kebab_problem(cid)
        if problem:
            checker.error((*cpath, "id"), f"component id {rules.kebab_problem(written)}")
        if cid in components:
            checker.error((*cpath, "id"), f"duplicate component id {cid!r}")
        component = checker.component(
            cid, table, cpath, variables, COMPONENT_KEYS_V1, "config", database_access=True
        )
        if component is not None:
            components[cid] = component
        trigger = _component_trigger(checker, ttype, cid, table.get("trigger"), (*cpath, "trigger"))
        if trigger is not None:
            triggers.append(trigger)
    checker.check_routes(triggers)

    if name is None or checker.errors:
        return None
    settings = {key: value for key, value in app_trigger.items() if key != "type"}
    return App(
        name=name,
        manifest_version=1,
        version=version,
        description=description,
        authors=authors,
        variables=variables,
        triggers=tuple(t for t, _ in triggers),
        components=components,
        trigger_settings={ttype: settings} if settings else {},
    )


def _component_trigger(
    checker: Checker, ttype: str, cid: str, raw: Any, path: Path
) -> tuple[Trigger, Path] | None:
    table = checker.table(raw, path, "[component.trigger]")
    if table is None:
        if ttype:
            checker.error(path, f"component {cid!r} has no [component.trigger] table")
        return None
    if ttype == "http":
        checker.unknown_keys(
            table, TRIGGER_KEYS["http"] - {"id", "component", "components"}, path, "[component.trigger]"
        )
        settings = checker.http_settings(table, path)
        return Trigger(type="http", component=cid, id=f"trigger-{cid}", **settings), path
    if ttype == "redis":
        checker.unknown_keys(table, frozenset({"channel"}), path, "[component.trigger]")
        channel = checker.string(table.get("channel"), (*path, "channel"), required=True)
        return Trigger(type="redis", component=cid, id=f"trigger-{cid}", channel=channel), path
    return Trigger(type=ttype, component=cid, id=f"trigger-{cid}", config=dict(table)), path
