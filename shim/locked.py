"""A Spin locked app (`spin.json`, what a Spin OCI artifact carries) as the runtime's `AppManifest`.

The app directory is the one `shim.ociapp` materializes from a pulled artifact:

    <dir>/spin.json                the locked app, verified against its layer digest
    <dir>/wasm/<hex>.wasm          each component's Wasm, named by its sha256
    <dir>/files/<component>/<path> each component's files, laid out as the guest sees them

Triggers of type `http` are read from their `trigger_config` the way spin.toml triggers are (route,
executor, static_response); other trigger types are listed as not served. Variables keep their defaults
(`required` when there is none), components their `config`, `env`, `allowed_outbound_hosts` and
`key_value_stores`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oci.errors import LayoutError
from oci.lockedapp import LockedApp, parse
from shim.errors import ManifestError
from shim.manifest import (
    AppManifest,
    ComponentSpec,
    FileMount,
    HttpTrigger,
    VariableSpec,
    _executor,
    _Reader,
    _route,
    _static_response,
)


def wasm_name(digest: str) -> str:
    """Where a component's Wasm sits in the app directory."""
    return f"wasm/{digest.split(':', 1)[-1]}.wasm"


def files_dir(component_id: str) -> str:
    return f"files/{component_id}"


def load_locked(path: Path) -> AppManifest:
    """Read `<dir>/spin.json` (materialized by `shim.ociapp`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(str(path), f"cannot read: {exc.strerror}") from None
    try:
        app = parse(data, str(path))
    except LayoutError as exc:
        raise ManifestError(str(path), str(exc)) from None
    return manifest_from_locked(app, path)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def manifest_from_locked(app: LockedApp, path: Path) -> AppManifest:
    where = str(path)
    variables = {
        name: VariableSpec(name, spec.default, spec.default is None, spec.secret)
        for name, spec in app.variables.items()
    }
    components: dict[str, ComponentSpec] = {}
    for c in app.components:
        if c.source.digest is None:
            raise ManifestError(where, f"component {c.id!r} has no source digest")
        components[c.id] = ComponentSpec(
            id=c.id,
            source=wasm_name(c.source.digest),
            files=(FileMount(files_dir(c.id), "/", False),) if c.files else (),
            allowed_outbound_hosts=_strings(c.metadata.get("allowed_outbound_hosts")),
            key_value_stores=_strings(c.metadata.get("key_value_stores")),
            variables=dict(c.config),
            environment=dict(c.env),
        )
    http: list[HttpTrigger] = []
    other: list[str] = []
    for t in app.triggers:
        if t.trigger_type != "http":
            if t.trigger_type not in other:
                other.append(t.trigger_type)
            continue
        r = _Reader(where, f"triggers.{t.id}.trigger_config", dict(t.trigger_config))
        component = r.table.get("component")
        if component is not None and component not in components:
            raise r.error("component", f"no component {component!r} is in the locked app")
        static = "static_response" in r.table
        kind, wagi = _executor(r)
        http.append(
            HttpTrigger(
                id=t.id,
                route=_route(r, r.table.get("route")),
                component=component,
                executor=kind,
                wagi=wagi,
                static_response=_static_response(r) if static else None,
            )
        )
    name = app.metadata.get("name")
    return AppManifest(path, str(name or "app"), variables, components, tuple(http), tuple(other))
