"""`spindle diff` and `spindle apply`: one reconcile of a source against a cluster.

SOURCE and the source, cluster and apply options are the ones `spindle reconcile` takes too
(`reconciler.cli.options`): a local directory rendered as it is, or a Git URL (or a directory with
`--ref`) fetched with its credentials and signature checks.

Exit codes, like `kubectl diff` and the same rule in every command (`opts.exit_code`): 0 clean;
1 findings: drift (`diff`, `apply --detect-only`) or an invalid repo (render or validation errors,
as `spindle validate` exits); 2 errors: a failed object, no source, no cluster, usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.changeset import DRIFT_ACTIONS, Action, Attribution, ReconcileRecord
from reconciler.cli import options as opts
from reconciler.cli.options import ApplyArgs, ClusterArgs, EngineArgs, NotifyArgs, PublishArgs, SourceArgs
from reconciler.engine import Result
from reconciler.reports.common import published_line, summary
from reconciler.ssa import diff as diffmod
from reconciler.ssa.manager import Outcome


def run_once(
    source: str,
    source_args: SourceArgs,
    cluster_args: ClusterArgs,
    engine_args: EngineArgs,
    apply_args: ApplyArgs | None = None,
    *,
    dry_run: bool = False,
    publish_args: PublishArgs | None = None,
    notify_args: NotifyArgs | None = None,
) -> Result:
    """Fetch the source, connect, run one reconcile. Setup errors raise SetupError (exit 2)."""
    from reconciler import engine

    src = opts.open_source(source, source_args, full_history=(publish_args or opts.PublishArgs()).publish)
    fetched = opts.fetch_once(source, src)
    settings = opts.engine_settings(engine_args, src, apply_args, dry_run=dry_run, publish_args=publish_args)
    notifier = opts.notifier(notify_args)
    revision = opts.known_revision(fetched.revision)
    tgt = opts.connect(cluster_args, timeout=settings.timeout)
    try:
        with opts.progress() as say, opts.one_writer(
            tgt.client, src.name, apply_args, dry_run=dry_run, command="spindle apply", say=say
        ):
            pending = notifier.pending(src.name, revision.sha if revision else "") if notifier else []
            result = engine.run(
                fetched.checkout,
                source_name=src.name,
                revision=revision,
                options=settings,
                client=tgt.client,
                progress=say,
            )
    finally:
        tgt.close()
    if notifier is not None:  # never fails the run: what could not be posted is a warning
        result.record.warnings.extend(pending + notifier.finished(result.record))
    return result


# -- diff --------------------------------------------------------------------------------------


def drift_json(result: Result) -> dict[str, Any]:
    """The record as JSON plus `drift` (bool) and a unified diff per drifted object."""
    from reconciler.reports.records import record_to_dict

    out = record_to_dict(result.record)
    drifted = [o for o in result.outcomes if o.action in DRIFT_ACTIONS]
    out["drift"] = bool(drifted)
    out["diffs"] = {o.subject: _unified(o) for o in drifted}
    return out


def _unified(o: Outcome) -> str:
    if o.action is Action.PRUNED:
        from reconciler.ssa import mask, normalize

        return diffmod.unified(o.subject, mask.mask(normalize.comparable(o.live or {})), None)
    return diffmod.unified(o.subject, o.live_view, o.desired_view)


def _owners(attrs: tuple[Attribution, ...]) -> str:
    return (
        ", ".join(f"{a.manager} ({a.operation}{', ' + a.time if a.time else ''})" for a in attrs)
        or "no manager"
    )


def _from(o: Outcome) -> str:
    """` (from FILE)`: where in Git a failed object came from, so the log says what to fix."""
    from reconciler.ssa import objects

    path = objects.annotation(o.desired or {}, objects.SOURCE_PATH_ANNOTATION)
    return f" (from {path})" if path else ""


def print_drift(result: Result) -> None:
    """Per drifted object: its changed fields with live and Git values and their owners, and a
    unified YAML diff; then failures and errors."""
    for o in result.outcomes:
        if o.action not in DRIFT_ACTIONS:
            continue
        verb = {"Created": "created", "Configured": "drifted", "Pruned": "deleted"}[o.action.value]
        click.echo(f"► {o.subject} {verb}" + (f" ({o.message})" if o.message else ""))
        for f in o.fields:
            click.echo(
                f"  {f.path}: {json.dumps(f.live)} → {json.dumps(f.desired)}   owned by {_owners(f.owners)}"
            )
        text = _unified(o)
        if text:
            click.echo(text.rstrip("\n"))
    for o in result.outcomes:
        if o.action is Action.FAILED:
            click.echo(f"✗ {o.subject}{_from(o)} failed: {o.message}")
    for e in result.record.errors:
        click.echo(f"✗ {e}")


@click.command("diff")
@click.argument("source")
@opts.source_options
@opts.cluster_options
@opts.engine_options
@opts.publish_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff(
    source: str, source_args: SourceArgs, cluster_args: ClusterArgs, engine_args: EngineArgs,
    publish_args: PublishArgs, output: str,
) -> None:
    """Show how the cluster differs from SOURCE. Exit 0 no drift, 1 drift or an invalid repo, 2 error."""
    result = run_once(source, source_args, cluster_args, engine_args, dry_run=True, publish_args=publish_args)
    if output == "json":
        click.echo(json.dumps(drift_json(result), indent=2, default=str))
    else:
        print_drift(result)
    sys.exit(opts.exit_code(result.record, drift_is_a_finding=True))


# -- apply -------------------------------------------------------------------------------------


def print_summary(result: Result) -> None:
    """One row per object that changed or has something to say (a table on a terminal)."""
    record = result.record
    rows = [
        (
            o.subject,
            o.action.value,
            o.health.value,
            o.message + (_from(o) if o.action is Action.FAILED else ""),
        )
        for o in result.outcomes
        if o.action is not Action.UNCHANGED or o.message
    ]
    rev = record.revision.short if record.revision else "(no revision)"
    console = _terminal()
    if console is not None and console.width >= table_width(rows):
        console.print(summary_table(f"{record.source} @ {rev} ({record.mode})", rows))
    else:  # not a terminal, or one too narrow for the table: plain lines, never a name cut
        click.echo(f"{record.source} @ {rev} ({record.mode})")
        width = max([len(r[0]) for r in rows] + [6])
        for subject, action, health, message in rows:
            click.echo(f"{subject:<{width}}  {action:<10}  {health:<11}  {message}".rstrip())
    click.echo(summary(record))
    for p in record.published:
        if not p.error:
            click.echo(f"published: {published_line(p)}")
    for e in record.errors:
        click.echo(f"error: {e}")
    for w in record.warnings:
        click.echo(f"warning: {w}")


def _terminal() -> Any:
    """A rich Console for stdout when it is a terminal, else None."""
    if not sys.stdout.isatty():
        return None
    from rich.console import Console

    return Console()


def table_width(rows: list[tuple[str, str, str, str]]) -> int:
    """Columns the summary table needs to show every object name, action and health whole
    (borders and padding 13, a message column of at least 12)."""
    widest = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(("OBJECT", "ACTION", "HEALTH"))]
    return sum(widest) + 13 + 12


def summary_table(title: str, rows: list[tuple[str, str, str, str]]) -> Any:
    """The summary as a rich Table: object names are never cut (a name is what you copy into
    kubectl); on a narrow terminal the message column wraps instead."""
    from rich.table import Table

    table = Table(title=title)
    width = max([len(r[0]) for r in rows] + [6])
    table.add_column("OBJECT", no_wrap=True, min_width=width)
    table.add_column("ACTION", no_wrap=True, min_width=max([len(r[1]) for r in rows] + [6]))
    table.add_column("HEALTH", no_wrap=True, min_width=max([len(r[2]) for r in rows] + [6]))
    table.add_column("MESSAGE", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _save_history(record: ReconcileRecord, path: Path | None) -> None:
    from reconciler.history import History, HistoryError

    try:
        with History(path) as history:
            history.add(record)
    except HistoryError as exc:  # the reconcile happened; a history problem must not hide that
        click.echo(f"warning: could not record the reconcile in the history: {exc}", err=True)


@click.command("apply")
@click.argument("source")
@opts.source_options
@opts.cluster_options
@opts.engine_options
@opts.apply_options
@opts.publish_options
@opts.notify_options
@click.option("--dry-run", is_flag=True, help="Dry-run every change on the server; change nothing.")
@click.option("--no-history", is_flag=True, help="Do not record this reconcile.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def apply(
    source: str,
    source_args: SourceArgs,
    cluster_args: ClusterArgs,
    engine_args: EngineArgs,
    apply_args: ApplyArgs,
    publish_args: PublishArgs,
    notify_args: NotifyArgs,
    dry_run: bool,
    no_history: bool,
    output: str,
) -> None:
    """Reconcile SOURCE into the cluster once and print a summary."""
    result = run_once(
        source, source_args, cluster_args, engine_args, apply_args, dry_run=dry_run,
        publish_args=publish_args, notify_args=notify_args,
    )
    if not no_history:
        _save_history(result.record, apply_args.history)
    if output == "json":
        click.echo(json.dumps(drift_json(result), indent=2, default=str))
    else:
        print_summary(result)
        if apply_args.detect_only:
            print_drift(result)
    sys.exit(opts.exit_code(result.record, drift_is_a_finding=apply_args.detect_only))
