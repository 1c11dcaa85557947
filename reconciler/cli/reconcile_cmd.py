"""`spindle reconcile SOURCE --interval 5m [--once]`: reconcile on a schedule and on push webhooks.

SOURCE and the source, cluster, engine and apply options are the ones `spindle diff` and
`spindle apply` take (`reconciler.cli.options`). Each run is recorded in the history (see
`spindle report`). When the Git fetch fails, the loop reconciles the last good checkout again and
retries the fetch with backoff (`reconciler.loop`).

Exit codes: with `--once` as `spindle apply` (0 success, 1 drift found by `--detect-only`, 2 error);
otherwise 0 after a graceful stop (SIGTERM/SIGINT), 2 on bad usage or a webhook port that cannot
be bound.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click

from reconciler.changeset import ReconcileRecord, Revision
from reconciler.cli import options as opts
from reconciler.cli.options import (
    ApplyArgs,
    ClusterArgs,
    Duration,
    EngineArgs,
    NotifyArgs,
    PublishArgs,
    SourceArgs,
)
from reconciler.loop import WebhookConfig
from reconciler.scheduler import Backoff, default_backoff


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _read_secret(path: Path | None, env: str) -> bytes:
    if path is not None:
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.UsageError(f"cannot read webhook secret file {path}: {exc.strerror}") from None
        where = f"webhook secret file {path}"
    else:
        secret = os.environ.get(env, "").strip()
        where = f"environment variable {env}"
    if not secret:
        raise click.UsageError(
            f"--webhook-addr needs a secret: {where} is empty or unset "
            "(use --webhook-secret-file or --webhook-secret-env)"
        )
    return secret.encode()


def _webhook(addr: str, secret_file: Path | None, secret_env: str, max_payload: int) -> WebhookConfig:
    from reconciler.webhook import parse_addr

    try:
        host, port = parse_addr(addr)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--webhook-addr") from None
    return WebhookConfig(host, port, _read_secret(secret_file, secret_env), max_payload)


def _backoff(interval: float, initial: float | None, cap: float | None) -> Backoff:
    """The retry delays after failed runs: `default_backoff` unless --retry-initial/--retry-max."""
    backoff = default_backoff(interval)
    if initial is None and cap is None:
        return backoff
    first = initial if initial is not None else backoff.initial
    return replace(backoff, initial=first, cap=max(first, cap or backoff.cap))


def _line(record: ReconcileRecord) -> str:
    """One stderr line per daemon run."""
    from reconciler.reports.common import summary

    rev = record.revision.short if record.revision and record.revision.sha else "(no revision)"
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    errors = "" if record.ok else f"; {len(record.errors)} error(s): " + "; ".join(record.errors)[:300]
    return f"{stamp} {record.source} @ {rev}: {summary(record)}{errors}"


@click.command("reconcile")
@click.argument("source")
@opts.source_options
@opts.cluster_options
@opts.engine_options
@opts.apply_options
@opts.publish_options
@opts.notify_options
@click.option("--interval", type=Duration(), default="5m", show_default=True, help="Time between runs.")
@click.option("--jitter", type=Duration(), help="Random delay added to each run (default: 10% of interval).")
@click.option("--retry-initial", type=Duration(), help="First retry delay after a failure (default 10s).")
@click.option("--retry-max", type=Duration(), help="Longest retry delay (default: the interval).")
@click.option("--once", is_flag=True, help="Run one reconcile and exit.")
@click.option("--webhook-addr", metavar="HOST:PORT",
              help="Serve /hook, /healthz, /readyz and /metrics here (`:8080` binds 127.0.0.1).")
@click.option("--webhook-secret-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the webhook secret.")
@click.option("--webhook-secret-env", default="SPINDLE_WEBHOOK_SECRET", show_default=True, metavar="VAR",
              help="Environment variable holding the webhook secret.")
@click.option("--max-payload", type=click.IntRange(1), default=1024 * 1024, show_default=True,
              help="Largest webhook body accepted, in bytes.")
def reconcile(
    source: str,
    source_args: SourceArgs,
    cluster_args: ClusterArgs,
    engine_args: EngineArgs,
    apply_args: ApplyArgs,
    publish_args: PublishArgs,
    notify_args: NotifyArgs,
    interval: float,
    jitter: float | None,
    retry_initial: float | None,
    retry_max: float | None,
    once: bool,
    webhook_addr: str | None,
    webhook_secret_file: Path | None,
    webhook_secret_env: str,
    max_payload: int,
) -> None:
    """Reconcile SOURCE on a schedule and on push webhooks."""
    from reconciler import engine
    from reconciler.history import History, HistoryError
    from reconciler.loop import ReconcileLoop, RunOutcome, serve
    from reconciler.reports import render

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if interval <= 0:
        raise click.BadParameter("must be positive", param_hint="--interval")
    webhook = None
    if webhook_addr and not once:
        webhook = _webhook(webhook_addr, webhook_secret_file, webhook_secret_env, max_payload)
    src = opts.open_source(source, source_args, full_history=publish_args.publish)
    notifier = opts.notifier(notify_args)
    settings = opts.engine_settings(engine_args, src, apply_args, publish_args=publish_args)
    try:
        history = History(apply_args.history)
    except HistoryError as exc:
        raise opts.SetupError(str(exc)) from None
    try:
        tgt = opts.connect(cluster_args, timeout=settings.timeout, share_embedded=not once)
    except opts.SetupError:
        history.close()
        raise

    def make_loop(say: Callable[[str], None]) -> ReconcileLoop:
        def reconcile_fn(checkout: Path, *, source_name: str, revision: Revision | None) -> ReconcileRecord:
            record = locked_run(checkout, source_name=source_name, revision=opts.known_revision(revision))
            if notifier is not None:  # never fails the run: what could not be posted is a warning
                record.warnings.extend(notifier.finished(record))
            return record

        def locked_run(checkout: Path, *, source_name: str, revision: Revision | None) -> ReconcileRecord:
            announce = say if once else lambda message: click.echo(message, err=True)
            try:
                with opts.one_writer(tgt.client, source_name, apply_args, dry_run=False,
                                     command="spindle reconcile", say=announce):
                    sha = revision.sha if revision else ""
                    pending = notifier.pending(source_name, sha) if notifier else []
                    record = engine.run(checkout, source_name=source_name, revision=revision,
                                        options=settings, client=tgt.client, progress=say).record
                    record.warnings.extend(pending)
                    return record
            except opts.SetupError as exc:  # the Lease is held: this run did nothing
                return ReconcileRecord(source=source_name, revision=revision, started=_stamp(),
                                       finished=_stamp(), mode=settings.record_mode, errors=[exc.message])

        def on_record(outcome: RunOutcome) -> None:
            if not once:
                click.echo(_line(outcome.record), err=True)

        return ReconcileLoop(source_name=src.name, fetch=src.fetch, reconcile=reconcile_fn, history=history,
                             on_record=on_record)

    try:
        if once:
            with opts.progress() as say:
                record = make_loop(say).run_once().record
            click.echo(render([record], "text"), nl=False)
            sys.exit(opts.exit_code(record, drift_is_a_finding=apply_args.detect_only))
        delay = jitter if jitter is not None else interval * 0.1
        click.echo(f"reconciling {src.name} every {interval:g}s (+ up to {delay:g}s jitter) into "
                   f"{tgt.description}", err=True)
        try:
            code = serve(
                make_loop(lambda _message: None), interval=interval, jitter=delay,
                backoff=_backoff(interval, retry_initial, retry_max), webhook=webhook,
                announce=lambda message: click.echo(message, err=True),
            )
        except OSError as exc:  # runs never raise (the scheduler catches them): this is the listener
            raise opts.SetupError(f"cannot listen on {webhook_addr}: {exc.strerror or exc}") from None
        sys.exit(code)
    finally:
        history.close()
        tgt.close()
