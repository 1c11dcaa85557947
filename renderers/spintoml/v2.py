"""Manifest v2 (`spin_manifest_version = 2`) → the typed model.

Triggers are checked against the components (references, inline components), and trigger ids and
inline component ids are generated as Spin's normalize step does.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from renderers.spintoml import rules
from renderers.spintoml.checker import TOP_KEYS_V2, TRIGGER_KEYS, Checker, type_name
from renderers.spintoml.lines import Path
from renderers.spintoml.model import App, Component, Trigger, Variable

# The trigger types containerd-shim-spin runs (spinkube.md 4.3).
SHIM_TRIGGER_TYPES = ("http", "redis", "sqs", "mqtt", "command")


def check_v2(doc: dict[str, Any], checker: Checker) -> App | None:
    """Validate a manifest v2 document."""
    checker.unknown_keys(doc, TOP_KEYS_V2, (), "the manifest")
    app = checker.application(doc.get("application"), ("application",))
    name = checker.string(app.get("name"), ("application", "name"), required=True) if app else None
    version = checker.string(app.get("version"), ("application", "version")) or ""
    description = checker.string(app.get("description"), ("application", "description")) or ""
    authors = checker.strings(app.get("authors"), ("application", "authors"))
    targets = app.get("targets") or []
    checker.targets(targets, ("application", "targets"))
    if not isinstance(targets, list):
        targets = []
    variables = checker.variables(doc.get("variables"), ("variables",))

    components: dict[str, Component] = {}
    raw_components = checker.table(doc.get("component"), ("component",), "[component]") or {}
    for cid, raw in raw_components.items():
        cpath: Path = ("component", cid)
        problem = rules.kebab_problem(cid)
        if problem:
            checker.error(cpath, f"component id {problem}")
        component = checker.component(cid, raw, cpath, variables)
        if component is not None:
            components[cid] = component

    triggers: list[tuple[Trigger, Path]] = []
    raw_triggers = checker.table(doc.get("trigger"), ("trigger",), "[trigger]") or {}
    if not raw_triggers:
        checker.error(("trigger",), "the application has no triggers ([[trigger.<type>]])")
    for ttype, entries in raw_triggers.items():
        close = difflib.get_close_matches(ttype, SHIM_TRIGGER_TYPES, n=1, cutoff=0.6)
        if close and ttype not in SHIM_TRIGGER_TYPES:
            # Other types are trigger plugins (cron, ...); a near miss of a built-in one is a typo
            # that Spin would only report as a missing plugin, and SpinKube's shim at start-up.
            checker.error(("trigger", ttype), f"unknown trigger type {ttype!r} (did you mean {close[0]!r}?)")
        if not isinstance(entries, list):
            checker.error(
                ("trigger", ttype), f"trigger.{ttype} must be an array of tables ([[trigger.{ttype}]])"
            )
    trigger_ids = _trigger_ids(raw_triggers)
    taken = set(raw_components)
    for (ttype, i), tid in trigger_ids.items():
        tpath: Path = ("trigger", ttype, i)
        entry = raw_triggers[ttype][i]
        trigger = _trigger_v2(checker, ttype, entry, tpath, tid, variables, raw_components, components, taken)
        if trigger is not None:
            triggers.append((trigger, tpath))
    checker.check_routes(triggers)

    if name is None or checker.errors:
        return None
    return App(
        name=name,
        manifest_version=2,
        version=version,
        description=description,
        authors=authors,
        targets=tuple(targets),
        variables=variables,
        triggers=tuple(t for t, _ in triggers),
        components=components,
        trigger_settings=dict(app.get("trigger", {}) or {}),
        tool=dict(app.get("tool", {}) or {}),
    )


def _trigger_ids(raw_triggers: Mapping[str, Any]) -> dict[tuple[str, int], str]:
    """Every trigger's id, generated as Spin's normalize step does when the manifest gives none:
    `<component>-<type>-trigger` for a component reference, else `<type>-trigger<n>`."""
    entries = {
        (ttype, i): entry
        for ttype, items in raw_triggers.items()
        if isinstance(items, list)
        for i, entry in enumerate(items)
    }
    taken: set[str] = {
        entry["id"]
        for entry in entries.values()
        if isinstance(entry, dict) and isinstance(entry.get("id"), str)
    }
    ids: dict[tuple[str, int], str] = {}
    counters: dict[str, int] = {}
    for (ttype, i), entry in entries.items():
        table = entry if isinstance(entry, dict) else {}
        tid = table.get("id")
        if isinstance(tid, str) and tid:
            ids[(ttype, i)] = tid
            continue
        component = table.get("component")
        candidate = f"{component}-{ttype}-trigger"
        if isinstance(component, str) and candidate not in taken:
            ids[(ttype, i)] = candidate
        else:
            counter = counters.get(ttype, 1)
            while f"{ttype}-trigger{counter}" in taken:
                counter += 1
            candidate = f"{ttype}-trigger{counter}"
            counters[ttype] = counter
            ids[(ttype, i)] = candidate
        taken.add(candidate)
    return ids


def _trigger_v2(
    checker: Checker,
    ttype: str,
    entry: Any,
    path: Path,
    tid: str,
    variables: Mapping[str, Variable],
    declared: Mapping[str, Any],
    components: dict[str, Component],
    taken: set[str],
) -> Trigger | None:
    table = checker.table(entry, path, f"a [[trigger.{ttype}]] entry")
    if table is None:
        return None
    allowed = TRIGGER_KEYS.get(ttype)
    if allowed is not None:
        checker.unknown_keys(table, allowed, path, f"a [[trigger.{ttype}]] entry")
    checker.string(table.get("id"), (*path, "id"))
    # Every component spec of the trigger: `component`, then each of `components`.
    specs: list[tuple[Any, Path]] = []
    if "component" in table:
        specs.append((table["component"], (*path, "component")))
    extra = checker.table(table.get("components"), (*path, "components"), "components") or {}
    for name, value in extra.items():
        if isinstance(value, list):
            specs += [(spec, (*path, "components", name, j)) for j, spec in enumerate(value)]
        else:
            specs.append((value, (*path, "components", name)))
    counter = [1]
    resolved = [
        _component_ref(
            checker, spec, spath, tid, len(specs) > 1, counter, variables, declared, components, taken
        )
        for spec, spath in specs
    ]
    component_id = resolved[0] if "component" in table else None
    settings: dict[str, Any] = {}
    if ttype == "http":
        settings = checker.http_settings(table, path)
        has_component, has_static = "component" in table, "static_response" in table
        if has_component and has_static:
            checker.error(
                (*path, "static_response"),
                "an HTTP trigger needs exactly one of 'component' and 'static_response', not both",
            )
        elif not has_component and not has_static:
            checker.error(path, "an HTTP trigger needs exactly one of 'component' and 'static_response'")
    elif ttype == "redis":
        settings["channel"] = checker.string(table.get("channel"), (*path, "channel"), required=True)
        if "component" not in table:
            checker.error((*path, "component"), "missing required key 'component'")
    known = {"id", "component", "components", "route", "executor", "static_response", "channel"}
    config = {key: value for key, value in table.items() if key not in known}
    return Trigger(type=ttype, component=component_id, id=tid, config=config, **settings)


def _component_ref(
    checker: Checker,
    spec: Any,
    path: Path,
    tid: str,
    several: bool,
    counter: list[int],
    variables: Mapping[str, Variable],
    declared: Mapping[str, Any],
    components: dict[str, Component],
    taken: set[str],
) -> str | None:
    """Resolve a trigger's component spec (an id string or an inline table) to a component id.
    Inline components are lifted into `components` under the id Spin gives them:
    `<trigger id>-component`, or `inline-component<n>` when the trigger has several specs or
    that id is not kebab-case or already used."""
    if isinstance(spec, str):
        problem = rules.kebab_problem(spec)
        if problem:
            checker.error(path, f"component reference {problem}")
        elif spec not in declared:
            checker.error(
                path, f"trigger refers to component {spec!r}, which is not defined ([component.{spec}])"
            )
        return spec
    if isinstance(spec, dict):
        inline_id = f"{tid}-component"
        if several or rules.kebab_problem(inline_id) or inline_id in taken:
            while f"inline-component{counter[0]}" in taken:
                counter[0] += 1
            inline_id = f"inline-component{counter[0]}"
        taken.add(inline_id)
        component = checker.component(inline_id, spec, path, variables)
        if component is not None:
            components[inline_id] = component
        return inline_id
    checker.error(path, f"component must be an id string or an inline table, not {type_name(spec)}")
    return None
