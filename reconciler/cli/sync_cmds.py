"""`spindle diff` and `spindle apply`: one reconcile of a source against a cluster.

SOURCE is a local directory (rendered as it is on disk; its Git HEAD, if any, is the revision)
or a Git URL (fetched through `reconciler.source`, with `--ref`). The cluster is `--kubeconfig`
/ `--context`, `$KUBECONFIG`, `~/.kube/config`, in-cluster, or else the embedded kubesim
cluster (a notice on stderr says so).

Exit codes, like `kubectl diff`: `diff` 0 no drift, 1 drift, 2 error; `apply` 0 success, 1 drift
found by `--detect-only`, 2 error (a failed object, a render error, no cluster).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from reconciler.changeset import Action, ReconcileRecord, Revision
from reconciler.engine import Mode, Options, Result
from reconciler.ssa import diff as diffmod
from reconciler.ssa.manager import Outcome

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[^/\s]+@[^/\s]+:)", re.IGNORECASE)


@dataclass
class Checkout:
    path: Path
    revision: Revision | None
    name: str


def resolve_source(source: str, *, ref: str | None = None, subpath: str | None = None) -> Checkout:
    """A local directory as it is, or a Git URL fetched into the state directory's cache."""
    local = Path(source).expanduser()
    if not _URL.match(source) and local.is_dir() and ref is None:
        return Checkout(local.resolve(), _head_revision(local), local.resolve().name)
    from reconciler.source import GitSource, Ref, RefKind, SourceSpec
    from reconciler.statedir import state_dir

    spec_ref = Ref()
    if ref:
        kind, _, value = ref.partition(":")
        spec_ref = (
            Ref(RefKind(kind), value) if value and kind in {k.value for k in RefKind} else Ref(value=ref)
        )
    fetched = GitSource(SourceSpec(url=source, ref=spec_ref, path=subpath or ""), state_dir() / "git").fetch()
    name = re.sub(r"\.git$", "", source.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]) or "source"
    return Checkout(fetched.checkout, fetched.revision, name)


def _head_revision(path: Path) -> Revision | None:
    try:
        import git

        repo = git.Repo(path, search_parent_directories=True)
        commit = repo.head.commit
    except Exception:  # not a repository, or no commit yet: a plain directory has no revision
        return None
    return Revision(
        sha=commit.hexsha,
        author=f"{commit.author.name} <{commit.author.email}>",
        time=commit.committed_datetime.isoformat(),
        message=str(commit.message).strip(),
    )


# -- shared options ----------------------------------------------------------------------------


def cluster_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig file.")(fn)
    fn = click.option("--context", help="Kubeconfig context (default: the current one).")(fn)
    return fn


def source_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--path", "subpath", help="Sub-path of the source to render.")(fn)
    fn = click.option(
        "--ref", help="Git ref for a URL source: branch:NAME, tag:NAME, semver:RANGE, commit:SHA."
    )(fn)
    fn = click.option(
        "--name",
        "source_name",
        help="Source name (owner label, inventory); default: the directory or repo name.",
    )(fn)
    fn = click.option(
        "--mode",
        type=click.Choice([m.value for m in Mode]),
        default=Mode.RENDER.value,
        show_default=True,
        help="render: spindle renders SpinApps; operator: apply SpinApps for an in-cluster spin-operator.",
    )(fn)
    fn = click.option(
        "--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for health."
    )(fn)
    fn = click.option(
        "--concurrency", type=click.IntRange(1, 64), default=8, show_default=True, help="Parallel dry-runs."
    )(fn)
    return fn


def _err(message: str) -> None:
    click.echo(message, err=True)


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield lambda _m: None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("reconciling") as status:
        yield lambda message: status.update(message)


def run_once(
    source: str,
    *,
    options: Options,
    ref: str | None,
    source_name: str | None,
    kubeconfig: str | None,
    context: str | None,
) -> Result:
    """Resolve the source, connect, run one reconcile; raises click.ClickException on setup errors."""
    from reconciler import engine
    from reconciler.kube import errors, target

    try:
        fetched = bool(_URL.match(source)) or ref is not None
        checkout = resolve_source(source, ref=ref, subpath=options.path if fetched else None)
    except Exception as exc:  # SourceError and friends: reported, exit 2
        raise click.ClickException(f"source {source}: {exc}") from exc
    if _URL.match(source) or ref is not None:  # the Git source already applied the sub-path
        options = dataclasses.replace(options, path=None)
    try:
        tgt = target.connect(
            kubeconfig=kubeconfig, context=context, notice=_err, timeout=max(options.timeout, 30.0)
        )
    except errors.KubeError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with _progress() as say:
            return engine.run(
                checkout.path,
                source_name=source_name or checkout.name,
                revision=checkout.revision,
                options=options,
                client=tgt.client,
                progress=say,
            )
    finally:
        tgt.close()


# -- diff --------------------------------------------------------------------------------------


def drift_json(result: Result) -> dict[str, Any]:
    from reconciler.reports.records import record_to_dict

    out = record_to_dict(result.record)
    drifted = [o for o in result.outcomes if o.action in (Action.CREATED, Action.CONFIGURED, Action.PRUNED)]
    out["drift"] = bool(drifted)
    out["diffs"] = {o.subject: _unified(o) for o in drifted}
    return out


def _unified(o: Outcome) -> str:
    if o.action is Action.PRUNED:
        from reconciler.ssa import mask, normalize

        return diffmod.unified(o.subject, mask.mask(normalize.comparable(o.live or {})), None)
    return diffmod.unified(o.subject, o.live_view, o.desired_view)


def _owners(attrs: tuple[Any, ...]) -> str:
    return (
        ", ".join(f"{a.manager} ({a.operation}{', ' + a.time if a.time else ''})" for a in attrs)
        or "no manager"
    )


def print_drift(result: Result) -> None:
    for o in result.outcomes:
        if o.action not in (Action.CREATED, Action.CONFIGURED, Action.PRUNED):
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
            click.echo(f"✗ {o.subject} failed: {o.message}")
    for e in result.record.errors:
        click.echo(f"✗ {e}")


@click.command("diff")
@click.argument("source")
@source_options
@cluster_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff(
    source: str,
    subpath: str | None,
    ref: str | None,
    source_name: str | None,
    mode: str,
    timeout: float,
    concurrency: int,
    kubeconfig: str | None,
    context: str | None,
    output: str,
) -> None:
    """Show how the cluster differs from SOURCE. Exit 0 no drift, 1 drift, 2 error."""
    options = Options(dry_run=True, path=subpath, mode=Mode(mode), timeout=timeout, concurrency=concurrency)
    try:
        result = run_once(
            source, options=options, ref=ref, source_name=source_name, kubeconfig=kubeconfig, context=context
        )
    except click.ClickException as exc:
        _err(f"Error: {exc.message}")
        sys.exit(EXIT_ERROR)
    doc = drift_json(result)
    if output == "json":
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        print_drift(result)
    sys.exit(EXIT_ERROR if not result.record.ok else EXIT_DRIFT if doc["drift"] else EXIT_OK)


# -- apply -------------------------------------------------------------------------------------


def summary_counts(record: ReconcileRecord) -> str:
    counts = Counter(e.action.value for e in record.entries)
    order = [a.value for a in Action]
    return ", ".join(f"{counts[a]} {a.lower()}" for a in order if counts[a]) or "no objects"


def print_summary(result: Result) -> None:
    record = result.record
    rows = [
        (o.subject, o.action.value, o.health.value, o.message)
        for o in result.outcomes
        if o.action is not Action.UNCHANGED or o.message
    ]
    rev = record.revision.sha[:12] if record.revision else "(no revision)"
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{record.source} @ {rev} ({record.mode})")
        for col in ("OBJECT", "ACTION", "HEALTH", "MESSAGE"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    else:
        click.echo(f"{record.source} @ {rev} ({record.mode})")
        width = max([len(r[0]) for r in rows] + [6])
        for subject, action, health, message in rows:
            click.echo(f"{subject:<{width}}  {action:<10}  {health:<11}  {message}".rstrip())
    click.echo(summary_counts(record))
    for e in record.errors:
        click.echo(f"error: {e}")


def _save_history(record: ReconcileRecord, path: Path | None) -> None:
    try:
        from reconciler.history import History

        with History(path) as history:
            history.add(record)
    except Exception as exc:  # the reconcile happened; a history problem must not hide that
        _err(f"warning: could not record the reconcile in the history: {exc}")


@click.command("apply")
@click.argument("source")
@source_options
@cluster_options
@click.option("--dry-run", is_flag=True, help="Dry-run every change on the server; change nothing.")
@click.option("--detect-only", is_flag=True, help="Report drift and change nothing (exit 1 on drift).")
@click.option("--prune/--no-prune", default=True, show_default=True, help="Delete objects that left Git.")
@click.option("--force", is_flag=True, help="Recreate objects whose immutable fields changed.")
@click.option("--allow-empty", is_flag=True, help="Allow an empty desired set (prunes everything).")
@click.option(
    "--history",
    "history_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="History database (default: in the state directory).",
)
@click.option("--no-history", is_flag=True, help="Do not record this reconcile.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def apply(
    source: str,
    subpath: str | None,
    ref: str | None,
    source_name: str | None,
    mode: str,
    timeout: float,
    concurrency: int,
    kubeconfig: str | None,
    context: str | None,
    dry_run: bool,
    detect_only: bool,
    prune: bool,
    force: bool,
    allow_empty: bool,
    history_path: Path | None,
    no_history: bool,
    output: str,
) -> None:
    """Reconcile SOURCE into the cluster once and print a summary."""
    options = Options(
        dry_run=dry_run,
        detect_only=detect_only,
        prune=prune,
        force=force,
        allow_empty=allow_empty,
        mode=Mode(mode),
        path=subpath,
        timeout=timeout,
        concurrency=concurrency,
    )
    try:
        result = run_once(
            source, options=options, ref=ref, source_name=source_name, kubeconfig=kubeconfig, context=context
        )
    except click.ClickException as exc:
        _err(f"Error: {exc.message}")
        sys.exit(EXIT_ERROR)
    if not no_history:
        _save_history(result.record, history_path)
    if output == "json":
        click.echo(json.dumps(drift_json(result), indent=2, default=str))
    else:
        print_summary(result)
        if detect_only:
            print_drift(result)
    drifted = any(o.action in (Action.CREATED, Action.CONFIGURED, Action.PRUNED) for o in result.outcomes)
    if not result.record.ok:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_DRIFT if detect_only and drifted else EXIT_OK)


# `spindle reconcile` (the scheduled/webhook loop) lives in reconcile_cmd.py; re-exported here because
# the CLI registry points at `reconciler.cli.sync_cmds:reconcile`.
from reconciler.cli.reconcile_cmd import reconcile as reconcile  # noqa: E402
