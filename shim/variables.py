"""Spin variables: app `[variables]` resolved from env providers then defaults; component
`variables` rendered from `{{ app_var }}` templates. Everything is resolved (and required ones
checked) when the app loads, so a missing value is a load error, never a request-time surprise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from shim.codec import Err, Ok, V
from shim.errors import VariableError
from shim.hostlink import Implementations
from shim.manifest import AppManifest, VariableSpec
from shim.runtime_config import EnvProvider

_TEMPLATE = re.compile(r"\{\{\s*([a-zA-Z0-9_.-]+)\s*\}\}")


def _dotenv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip().strip("\"'")
    return out


def resolve_app_variables(specs: Mapping[str, VariableSpec], env: Mapping[str, str],
                          providers: tuple[EnvProvider, ...], root: Path, *,
                          env_names: bool = False) -> dict[str, str]:
    """Values of every app variable that has one; raises for a required variable without one.

    The providers are `spin up`'s: SPIN_VARIABLE_<NAME> and the runtime config's env providers.
    `env_names` adds what only containerd-shim-spin does: the bare `<NAME>` variable (so a
    variable `path` would get the host's $PATH: never for `spindle shim up`)."""
    sources = [(p.prefix, {**_dotenv(root / p.dotenv_path), **env} if p.dotenv_path else env)
               for p in providers]  # the process environment wins over a provider's .env file
    values: dict[str, str] = {}
    for name, spec in specs.items():
        value = next((src[f"{prefix}_{name.upper()}"] for prefix, src in sources
                      if f"{prefix}_{name.upper()}" in src), None)
        if value is None and env_names:
            # containerd-shim-spin copies the container's `<NAME>` into SPIN_VARIABLE_<NAME>
            value = env.get(name.upper())
        if value is None:
            value = spec.default
        if value is None:
            if spec.required:
                raise VariableError(name, "is required but has no value (set SPIN_VARIABLE_"
                                    f"{name.upper()} or configure a variables provider)")
            continue
        values[name] = value
    return values


def render(template: str, app_values: Mapping[str, str], where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in app_values:
            raise VariableError(name, f"used by {where} but has no value")
        return app_values[name]
    return _TEMPLATE.sub(sub, template)


def component_variables(app: AppManifest, component_id: str, app_values: Mapping[str, str]) -> dict[str, str]:
    comp = app.components[component_id]
    return {k: render(t, app_values, f"component {component_id!r} variable {k!r}")
            for k, t in comp.variables.items()}


def host_impls(values: Mapping[str, str]) -> Implementations:
    """fermyon:spin/variables and wasi:config/store over one component's resolved values."""
    def spin_get(name: str) -> object:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            return Err(V("invalid-name", name))
        if name not in values:
            return Err(V("undefined", f"no variable for {name!r}"))
        return Ok(values[name])

    def config_get(key: str) -> object:
        return Ok(values.get(key))

    def config_get_all() -> object:
        return Ok(sorted(values.items()))

    return {
        "fermyon:spin/variables#get": spin_get,
        "fermyon:spin/config#get-config": lambda key: Ok(values[key]) if key in values
        else Err(V("provider", f"no config for {key!r}")),
        "wasi:config/store#get": config_get,
        "wasi:config/store#get-all": config_get_all,
    }
