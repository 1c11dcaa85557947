"""`spindle scaffold`: print a SpinApp exactly as `spin kube scaffold` (spin-plugin-kube v0.4.0) does.

    spindle scaffold --from IMAGE [flags]      the plugin's flags, short forms and defaults
    spindle scaffold --project DIR[/spin.toml] what a Spin project's [application.tool.spindle]
                                               table scaffolds to (as `spindle render` uses it)

Exit codes: 0 printed, 1 invalid input (the plugin's message, or file:line: key for a project),
2 usage or I/O error.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from renderers import scaffold as scaffolding
from renderers import spintoml, tooltable
from renderers.errors import RenderError, ScaffoldError


def _csv_values(values: tuple[str, ...]) -> list[str]:
    """pflag's StringSlice: each occurrence may hold several comma-separated (CSV) values."""
    out: list[str] = []
    for value in values:
        if value == "":
            continue
        out.extend(next(csv.reader([value])))
    return out


def _variables(values: tuple[str, ...]) -> dict[str, str]:
    """pflag's StringToString: `name=value`; a value with one '=' is one pair (commas and all,
    surrounding double quotes trimmed), one with several is read as comma-separated pairs."""
    result: dict[str, str] = {}
    for value in values:
        count = value.count("=")
        if count == 0:
            raise click.BadParameter(f"{value} must be formatted as key=value", param_hint="'--variable'")
        pairs = [value.strip('"')] if count == 1 else next(csv.reader([value]))
        for pair in pairs:
            name, sep, text = pair.partition("=")
            if not sep:
                raise click.BadParameter(f"{pair} must be formatted as key=value", param_hint="'--variable'")
            result[name] = text
    return result


def _io_error(path: Path, exc: OSError) -> NoReturn:
    """I/O errors exit 2, like usage errors (click's FileError would exit 1)."""
    click.echo(f"Error: {path}: {exc.strerror or exc}", err=True)
    sys.exit(2)


def _write(out: Path, text: str) -> None:
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(out, 0o600)  # also when the file already existed with wider permissions


def _scaffold_project(spin_toml: Path) -> str:
    try:
        data = spin_toml.read_bytes()
    except OSError as exc:
        _io_error(spin_toml, exc)
    rel = spin_toml.as_posix()
    loaded = spintoml.load(data, rel, spin_toml.parent)
    errors: list[RenderError] = list(loaded.errors)
    docs = []
    if loaded.app is not None and loaded.lines is not None:
        if loaded.app.spindle is None:
            click.echo(f"{rel}: the project has no [application.tool.spindle] table to scaffold", err=True)
            sys.exit(1)
        opts, _ = tooltable.project_options(loaded.app, rel, loaded.lines, spin_toml.parent, errors)
        if opts is not None:
            docs = [scaffolding.scaffold(opts).text]
    if errors or not docs:
        for error in errors:
            click.echo(str(error), err=True)
        sys.exit(1)
    return docs[0]


@click.command("scaffold", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--from", "from_image", default="", help="Reference in the registry of the application.")
@click.option("-r", "--replicas", default=2, show_default=True, type=int, help="Minimum number of replicas.")
@click.option(
    "--max-replicas", default=3, show_default=True, type=int, help="Maximum replicas (autoscaling only)."
)
@click.option("--autoscaler", default="", help="The autoscaler to use: 'hpa' or 'keda'.")
@click.option(
    "--autoscaler-target-cpu-utilization",
    "cpu_target",
    default=60,
    show_default=True,
    type=int,
    help="Target CPU utilization percentage across the pods.",
)
@click.option(
    "--autoscaler-target-memory-utilization",
    "memory_target",
    default=60,
    show_default=True,
    type=int,
    help="Target memory utilization percentage across the pods.",
)
@click.option(
    "--executor",
    default=scaffolding.DEFAULT_EXECUTOR,
    show_default=True,
    help="The SpinAppExecutor that runs the app.",
)
@click.option("--cpu-limit", default="", help="Maximum CPU the application may use.")
@click.option("--memory-limit", default="", help="Maximum memory the application may use.")
@click.option("--cpu-request", default="", help="CPU requested (written only with a limit).")
@click.option("--memory-request", default="", help="Memory requested (written only with a limit).")
@click.option(
    "-c",
    "--runtime-config-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Runtime config file, stored base64-encoded in a generated Secret.",
)
@click.option("-v", "--variable", "variables", multiple=True, help="Application variable name=value.")
@click.option("--component", "components", multiple=True, help="Component ID to run (repeatable).")
@click.option("-s", "--image-pull-secret", "pull_secrets", multiple=True, help="Image pull Secret.")
@click.option("--service-account-name", default="", help="Service account of the pods.")
@click.option("--azure-identity", is_flag=True, help="Enable Azure Workload Identity.")
@click.option(
    "-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (mode 0600)."
)
@click.option(
    "--project",
    type=click.Path(exists=True, path_type=Path),
    help="Scaffold a Spin project (its spin.toml, or the directory holding it) from its "
    "[application.tool.spindle] table instead.",
)
@click.pass_context
def scaffold(
    ctx: click.Context,
    from_image: str,
    replicas: int,
    max_replicas: int,
    autoscaler: str,
    cpu_target: int,
    memory_target: int,
    executor: str,
    cpu_limit: str,
    memory_limit: str,
    cpu_request: str,
    memory_request: str,
    runtime_config_file: Path | None,
    variables: tuple[str, ...],
    components: tuple[str, ...],
    pull_secrets: tuple[str, ...],
    service_account_name: str,
    azure_identity: bool,
    out: Path | None,
    project: Path | None,
) -> None:
    """Print a SpinApp (and its Secret and autoscaler) like `spin kube scaffold`."""
    if project is not None:
        given = [
            name
            for name, value in ctx.params.items()
            if name not in ("project", "out")
            and ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
            and value
        ]
        if given:
            raise click.UsageError("--project takes its settings from the spin.toml; drop the other flags")
        text = _scaffold_project(project / "spin.toml" if project.is_dir() else project)
    else:
        if not from_image:
            raise click.UsageError('required flag(s) "from" not set')
        runtime_config = None
        if runtime_config_file is not None:
            try:
                runtime_config = runtime_config_file.read_bytes()
            except OSError as exc:
                _io_error(runtime_config_file, exc)
        opts = scaffolding.ScaffoldOptions(
            from_image=from_image,
            replicas=replicas,
            max_replicas=max_replicas,
            autoscaler=autoscaler,
            target_cpu_utilization=cpu_target,
            target_memory_utilization=memory_target,
            executor=executor,
            cpu_limit=cpu_limit,
            memory_limit=memory_limit,
            cpu_request=cpu_request,
            memory_request=memory_request,
            runtime_config=runtime_config,
            variables=_variables(variables),
            components=tuple(_csv_values(components)),
            image_pull_secrets=tuple(_csv_values(pull_secrets)),
            service_account_name=service_account_name,
            azure_identity=azure_identity,
        )
        try:
            text = scaffolding.scaffold(opts).text
        except ScaffoldError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        _write(out, text)
    except OSError as exc:
        _io_error(out, exc)
    click.echo(f"Application manifest saved to {out}", err=True)
