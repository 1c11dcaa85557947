"""`spindle-node-installer`: a drop-in for runtime-class-manager's `rcm-node-installer` in RCM's
installer Job (`install -H /mnt/node-root -r spin-v2`, env HOST_ROOT and RUNTIME_OPTIONS).

    spindle-node-installer install   [-H ROOT] [-r NAME] [-a ASSETS] [-c CONFIG] [-k RCM_PATH]
                                     [--restart-command CMD | --no-restart] [--sha256 HEX]
                                     [--lock-timeout S] [-o text|json]
    spindle-node-installer uninstall [-H ROOT] -r NAME [-c CONFIG] [-k RCM_PATH] [...]

Flags as RCM's binary: `-r/--runtime` is the runtime name and RuntimeClass handler (RCM's Job
passes the Shim's name, `spin-v2`; `containerd-shim-spin-v2` is accepted too); the asset is
`containerd-shim-<name>` in `-a/--asset-path` (a directory, default /assets, or the file itself);
when `-r` is left out, install takes the name from the only `containerd-shim-*` file there.
`-c/--runtime-config` overrides detection; `-k/--rcm-path` is where the shim, rcm-lock.json and the
installer's state live (default /opt/kwasm); `-H/--host-root` defaults to $HOST_ROOT, else /.
RUNTIME_OPTIONS is a JSON object of runtime options (`{"SystemdCgroup":"true"}`); "true"/"false"
become TOML booleans, numeric strings numbers, anything else a quoted string.

Exit status 0 (the node is provisioned / uninstalled), 1 (failed: one line on stderr naming the
file and what is wrong), 2 (usage). The final status line goes to stdout (`-o json`: one JSON
object instead) and, when Kubernetes provides one, to /dev/termination-log, where `kubectl get
pod -o yaml` shows it as the container's termination message.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import click

from node_installer import state
from node_installer.containerd_toml import OptionValue, coerce_option
from node_installer.errors import InstallerError, UsageError
from node_installer.hostfs import OsHostFs
from node_installer.installer import DEFAULT_LOCK_TIMEOUT, Installer, Result, Settings
from node_installer.plan import DEFAULT_RCM_PATH, Request
from node_installer.system import OsSystem

TERMINATION_LOG = Path("/dev/termination-log")


def parse_runtime_options(raw: str | None) -> dict[str, OptionValue]:
    """RUNTIME_OPTIONS (RCM's JSON of the Shim's containerdRuntimeOptions) as TOML-ready values."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UsageError("RUNTIME_OPTIONS", f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError("RUNTIME_OPTIONS", f"must be a JSON object, not {type(data).__name__}")
    out: dict[str, OptionValue] = {}
    for key, value in data.items():
        try:
            out[str(key)] = coerce_option(str(key), value)
        except ValueError as exc:
            raise UsageError("RUNTIME_OPTIONS", str(exc)) from exc
    return out


def _runtime_from_assets(asset_path: Path) -> str:
    if asset_path.is_file():
        return state.runtime_name(asset_path.name)
    found = sorted(p.name for p in asset_path.glob(state.SHIM_PREFIX + "*")) if asset_path.is_dir() else []
    if len(found) != 1:
        raise UsageError(
            "-r/--runtime",
            f"not given, and {asset_path} holds {len(found)} containerd-shim-* files "
            f"({', '.join(found) or 'none'})",
        )
    return state.runtime_name(found[0])


def _common(func: Any) -> Any:
    options = [
        click.option(
            "-H",
            "--host-root",
            envvar="HOST_ROOT",
            default="/",
            show_default=True,
            type=click.Path(path_type=Path),
            help="Where the node's / is mounted ($HOST_ROOT).",
        ),
        click.option(
            "-c", "--runtime-config", default=None, help="containerd config (node path); default: detect."
        ),
        click.option(
            "-k",
            "--rcm-path",
            default=str(DEFAULT_RCM_PATH),
            show_default=True,
            help="Node directory for the shim, rcm-lock.json and state.",
        ),
        click.option(
            "--restart-command",
            default=None,
            metavar="CMD",
            help="Run `sh -c CMD` instead of the preset's containerd restart.",
        ),
        click.option("--no-restart", is_flag=True, help="Do not restart containerd (say so instead)."),
        click.option(
            "--lock-timeout",
            type=float,
            default=DEFAULT_LOCK_TIMEOUT,
            show_default=True,
            help="Seconds to wait for another installer on this node.",
        ),
        click.option(
            "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Install or remove a containerd shim on a node and register it with containerd."""


@cli.command()
@click.option("-r", "--runtime", default=None, help="Runtime name = RuntimeClass handler (spin-v2).")
@click.option(
    "-a",
    "--asset-path",
    default="/assets",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Directory holding containerd-shim-<name>, or the file.",
)
@click.option(
    "--sha256", "expected_sha256", default=None, metavar="HEX", help="Refuse an asset with another sha256."
)
@_common
def install(runtime: str | None, asset_path: Path, expected_sha256: str | None, **common: Any) -> None:
    """Copy the shim to the node, add its runtime to containerd's config, restart containerd."""

    def build() -> tuple[Request, Settings]:
        name = state.runtime_name(runtime) if runtime else _runtime_from_assets(asset_path)
        options = parse_runtime_options(os.environ.get("RUNTIME_OPTIONS"))
        return _request(name, common, options), _settings(common, asset_path, expected_sha256)

    _execute("install", runtime or "", common, build)


@cli.command()
@click.option("-r", "--runtime", required=True, help="Runtime name = RuntimeClass handler (spin-v2).")
@_common
def uninstall(runtime: str, **common: Any) -> None:
    """Remove the runtime from containerd's config and the shim from the node, restart containerd."""

    def build() -> tuple[Request, Settings]:
        return _request(state.runtime_name(runtime), common, {}), _settings(common, Path("/assets"), None)

    _execute("uninstall", runtime, common, build)


def _request(name: str, common: dict[str, Any], options: dict[str, OptionValue]) -> Request:
    config = common["runtime_config"]
    return Request(
        runtime=name,
        rcm_path=PurePosixPath(common["rcm_path"]),
        runtime_config=PurePosixPath(config) if config else None,
        options=options,
    )


def _settings(common: dict[str, Any], asset_path: Path, expected_sha256: str | None) -> Settings:
    if common["restart_command"] and common["no_restart"]:
        raise UsageError("--no-restart", "cannot be combined with --restart-command")
    return Settings(
        asset_path=asset_path,
        restart_command=common["restart_command"],
        no_restart=common["no_restart"],
        lock_timeout=common["lock_timeout"],
        expected_sha256=expected_sha256,
    )


def _execute(operation: str, runtime: str, common: dict[str, Any], build: Any) -> None:
    as_json = common["output"] == "json"

    def log(message: str) -> None:
        click.echo(f"spindle-node-installer: {message}", err=True)

    try:
        request, settings = build()
        installer = Installer(OsHostFs(Path(common["host_root"])), OsSystem(), log=log)
        runner = installer.install if operation == "install" else installer.uninstall
        result: Result = runner(request, settings)
    except InstallerError as exc:
        name = state.runtime_name(runtime) if runtime else "runtime"
        line = f"{name}: failed: {exc}"
        click.echo(line, err=True)
        if as_json:
            error = {"type": exc.kind, "subject": exc.subject, "message": exc.message}
            click.echo(
                json.dumps({"operation": operation, "runtime": name, "status": "failed", "error": error})
            )
        _termination_log(line)
        sys.exit(1)
    line = result.status_line()
    click.echo(json.dumps(result.to_json(), indent=1) if as_json else line)
    _termination_log(line)


def _termination_log(line: str) -> None:
    if TERMINATION_LOG.is_file():
        with contextlib.suppress(OSError):
            TERMINATION_LOG.write_text(line + "\n")


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="spindle-node-installer", standalone_mode=True)
