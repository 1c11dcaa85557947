"""`spindle render` and `spindle validate`: a repo checkout → manifests, or the list of what
is wrong with it.

Exit codes (like `kubectl diff`): 0 clean, 1 the repo has errors (render still prints every
object that did render, errors go to stderr), 2 usage or I/O error (bad flags, missing path,
unreadable --nodes file).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from renderers.errors import RenderError
from renderers.meta import SOURCE_PATH_ANNOTATION
from renderers.model import Obj
from renderers.render import BUILTIN_CRDS_PATH, RenderResult, render_checkout
from renderers.settings import DEFAULT_SETTINGS, RenderSettings
from renderers.yamldocs import load_documents

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
_OUT_FILE = re.compile(r"^\d{4}_.+\.(yaml|json)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

try:  # libyaml is several times faster for large outputs
    _Dumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Dumper = yaml.SafeDumper


class IOFailure(click.ClickException):
    """An I/O problem (unreadable path or output dir): exit 2, like a usage error."""

    exit_code = EXIT_USAGE


def load_nodes(path: Path) -> list[Obj]:
    """Nodes from a YAML file: documents that are Nodes, or a (Node)List's items."""
    try:
        parsed, errors = load_documents(path.read_bytes(), str(path))
    except OSError as exc:
        raise click.BadParameter(f"cannot read nodes file {path}: {exc}", param_hint="--nodes") from exc
    if errors:
        raise click.BadParameter("; ".join(map(str, errors)), param_hint="--nodes")
    nodes: list[Obj] = []
    for doc in (d.body for d in parsed):
        if not isinstance(doc, dict):
            continue
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else [doc]
        for item in items or []:
            if isinstance(item, dict) and item.get("kind") == "Node":
                nodes.append(item)
    return nodes


def _run(path: Path, subpath: str | None, nodes_file: Path | None, settings: RenderSettings) -> RenderResult:
    nodes = load_nodes(nodes_file) if nodes_file else []
    try:
        return render_checkout(path, subpath, nodes, settings)
    except FileNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="--path") from exc
    except OSError as exc:
        raise IOFailure(f"cannot read {path}: {exc}") from exc


def warnings_of(result: RenderResult, path: Path, subpath: str | None) -> list[str]:
    """What is suspicious though valid: a walk that found nothing to deploy (a CI job pointed at
    the wrong directory would otherwise pass)."""
    if result.errors:
        return []
    sources = {((o.get("metadata") or {}).get("annotations") or {}).get(SOURCE_PATH_ANNOTATION)
               for o in result.objects}
    if sources - {BUILTIN_CRDS_PATH}:
        return []
    where = path / subpath if subpath else path
    return [f"nothing to deploy under {where}: no Spin project with an [application.tool.spindle] "
            "table, no SpinApp, Shim or other Kubernetes manifest"]


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


def _note_undeployed(result: RenderResult) -> None:
    for path, app in result.undeployed:
        click.echo(f"note: {path} (Spin app {app}) has no [application.tool.spindle] table: "
                   "checked, not deployed", err=True)


def _dump(objects: list[Obj], output: str) -> str:
    if output == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n"
    text: str = yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                              allow_unicode=True)
    return text


def out_file_name(index: int, obj: Obj, output: str) -> str:
    """`0001_deployment_default_hello.yaml`: apply order first, then what it is."""
    meta = obj.get("metadata") or {}
    parts = [str(obj.get("kind", "")).lower(), str(meta.get("namespace") or ""), str(meta.get("name", ""))]
    stem = "_".join(_UNSAFE.sub("-", p) for p in parts if p)
    return f"{index:04d}_{stem}.{output}"


def _written_by_spindle(path: Path) -> bool:
    """Whether an earlier render wrote `path`: every object it writes carries the source-path
    annotation, which hand-written manifests with the same numbered names do not."""
    return SOURCE_PATH_ANNOTATION in path.read_text(encoding="utf-8", errors="replace")


def _write_out(directory: Path, objects: list[Obj], output: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():  # only files a previous render wrote
            if stale.is_file() and _OUT_FILE.match(stale.name) and _written_by_spindle(stale):
                stale.unlink()
        for i, obj in enumerate(objects, start=1):
            text = json.dumps(obj, indent=2) + "\n" if output == "json" else _dump([obj], output)
            (directory / out_file_name(i, obj, output)).write_text(text)
    except OSError as exc:
        raise IOFailure(f"cannot write {directory}: {exc}") from exc


def _report_errors(errors: list[RenderError]) -> None:
    for error in errors:
        click.echo(f"error: {error}", err=True)
    click.echo(f"{len(errors)} error(s)", err=True)


def _settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options that override `RenderSettings`; the command receives `settings`."""
    defaults = DEFAULT_SETTINGS
    options = [
        click.option("--default-namespace", default=defaults.default_namespace, show_default=True,
                     help="Namespace of objects that name none."),
        click.option("--installer-namespace", default=defaults.installer_namespace, show_default=True,
                     help="Namespace of the Shim installer Jobs."),
        click.option("--node-installer-image", default=defaults.node_installer_image, show_default=True),
        click.option("--downloader-image", default=defaults.downloader_image, show_default=True),
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        names = ("default_namespace", "installer_namespace", "node_installer_image", "downloader_image")
        overrides = {name: kwargs.pop(name) for name in names}
        return command(settings=dataclasses.replace(defaults, **overrides), **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


_path_arg = click.argument(
    "path", type=click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)
)
_subpath_opt = click.option("--path", "subpath", metavar="SUBDIR", help="Only this directory of the repo.")
_nodes_opt = click.option(
    "--nodes", "nodes_file", metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file of the cluster's Node objects (for Shim installer Jobs).",
)


@click.command("render")
@_path_arg
@_subpath_opt
@_nodes_opt
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Output format (json: one v1 List).")
@click.option("--out", "out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Write one file per object into DIR instead of stdout.")
@_settings_options
def render_command(path: Path, subpath: str | None, nodes_file: Path | None, output: str,
                   out_dir: Path | None, settings: RenderSettings) -> None:
    """Render the repo at PATH into the manifests SpinKube would run, in apply order.

    Objects that render are printed even when others fail; errors go to stderr.
    Exit codes: 0 clean, 1 the repo has errors, 2 usage or I/O error.
    """
    result = _run(path, subpath, nodes_file, settings)
    if out_dir is not None:
        _write_out(out_dir, result.objects, output)
    else:
        sys.stdout.write(_dump(result.objects, output))
    _note_undeployed(result)
    _warn(warnings_of(result, path, subpath))
    if result.errors:
        _report_errors(result.errors)
        sys.exit(EXIT_INVALID)


@click.command("validate")
@_path_arg
@_subpath_opt
@_nodes_opt
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format (json: {valid, objects, errors, warnings} for CI).")
@_settings_options
def validate_command(path: Path, subpath: str | None, nodes_file: Path | None, output: str,
                     settings: RenderSettings) -> None:
    """Check every Spin project and spec in the repo at PATH; report all errors at once.

    Exit codes: 0 clean, 1 the repo has errors, 2 usage or I/O error.
    """
    result = _run(path, subpath, nodes_file, settings)
    warnings = warnings_of(result, path, subpath)
    if output == "json":
        report = {
            "valid": not result.errors,
            "objects": len(result.objects),
            "errors": [e.as_dict() for e in result.errors],
            "warnings": warnings,
        }
        click.echo(json.dumps(report, indent=2))
    elif result.errors:
        for error in result.errors:
            click.echo(str(error))
        click.echo(f"{len(result.errors)} error(s)")
    else:
        click.echo(f"ok: {len(result.objects)} object(s) render cleanly")
    if output != "json":
        _note_undeployed(result)
        _warn(warnings)
    sys.exit(EXIT_INVALID if result.errors else EXIT_OK)


render = render_command
validate = validate_command
