"""`spindle reconcile SOURCE --interval 5m [--once]`: reconcile on a schedule and on push webhooks.

SOURCE is a Git URL (https, ssh, file) fetched through `reconciler.source`, or a local directory:
a directory is rendered as it is on disk unless `--ref` is given, in which case it is fetched as a
Git repository. Each run is recorded in the history (see `spindle report`).

Exit codes: with `--once` as `spindle apply` (0 success, 1 drift found by `--detect-only`, 2 error);
otherwise 0 after a graceful stop (SIGTERM/SIGINT), 2 on bad usage.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reconciler.changeset import Action, ReconcileRecord, Revision

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[^/\s]+@[^/\s]+:)", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in `90`, `30s`, `5m`, `1h30m`, `500ms`."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or _DURATION.sub("", text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    return sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(text))


class Duration(click.ParamType[float]):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


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


def _source_spec(source: str, kw: dict[str, Any]) -> Any:
    from reconciler.source import Auth, Ref, RefKind, SourceSpec, Verify

    ref, subpath = kw["ref"], kw["subpath"]
    spec_ref = Ref(include_prerelease=kw["include_prerelease"])
    if ref:
        kind, sep, value = ref.partition(":")
        if sep and kind in {k.value for k in RefKind}:
            spec_ref = Ref(RefKind(kind), value, kw["include_prerelease"])
        else:
            spec_ref = Ref(RefKind.BRANCH, ref)
    return SourceSpec(
        url=source,
        ref=spec_ref,
        path=subpath or "",
        auth=Auth(
            ssh_key=kw["ssh_key"], known_hosts=kw["known_hosts"], token_file=kw["token_file"],
            token_env=kw["token_env"], username=kw["username"],
        ),
        verify=Verify(allowed_signers=kw["verify_allowed_signers"], gpg_home=kw["verify_gpg_home"]),
    )


def _local_fetcher(path: Path) -> Any:
    """A directory rendered as it is: the revision is its Git HEAD, if it has one."""
    from reconciler.source import FetchResult

    def fetch() -> FetchResult:
        return FetchResult(checkout=path, revision=_head_revision(path) or Revision(sha=""), changed=True)

    return fetch


def _head_revision(path: Path) -> Revision | None:
    try:
        import git

        commit = git.Repo(path, search_parent_directories=True).head.commit
    except Exception:  # not a repository or no commit yet: a plain directory has no revision
        return None
    return Revision(
        sha=commit.hexsha, author=f"{commit.author.name} <{commit.author.email}>",
        time=commit.committed_datetime.isoformat(), message=str(commit.message).strip(),
    )


def _default_name(source: str) -> str:
    tail = source.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return re.sub(r"\.git$", "", tail) or "source"


def _line(record: ReconcileRecord, ok: bool) -> str:
    from reconciler.reports.common import counts

    rev = record.revision.sha[:12] if record.revision and record.revision.sha else "(no revision)"
    summary = ", ".join(f"{n} {a.value.lower()}" for a, n in counts(record)) or "no objects"
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    errors = "" if ok else f"; {len(record.errors)} error(s): " + "; ".join(record.errors)[:300]
    return f"{stamp} {record.source} @ {rev}: {summary}{errors}"


@click.command("reconcile")
@click.argument("source")
@click.option("--name", "source_name", help="Source name (owner label, inventory, history).")
@click.option("--ref", help="branch:NAME (default branch:main), tag:NAME, semver:RANGE or commit:SHA.")
@click.option("--include-prerelease", is_flag=True, help="Let a semver range match pre-release tags.")
@click.option("--path", "subpath", help="Sub-path of the source to render.")
@click.option("--ssh-key", type=click.Path(dir_okay=False, path_type=Path), help="SSH private key.")
@click.option("--known-hosts", type=click.Path(dir_okay=False, path_type=Path),
              help="SSH known_hosts file (host keys are always checked strictly).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), help="HTTPS token file.")
@click.option("--token-env", metavar="VAR", help="Environment variable holding the HTTPS token.")
@click.option("--username", default="git", show_default=True, help="HTTPS user sent with the token.")
@click.option("--verify-allowed-signers", type=click.Path(dir_okay=False, path_type=Path),
              help="Refuse head commits not SSH-signed by a key in this allowed_signers file.")
@click.option("--verify-gpg-home", type=click.Path(file_okay=False, path_type=Path),
              help="Refuse head commits not GPG-signed by a key in this GNUPGHOME.")
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
@click.option("--detect-only", is_flag=True, help="Report drift and change nothing.")
@click.option("--prune/--no-prune", default=True, show_default=True, help="Delete objects that left Git.")
@click.option("--force", is_flag=True, help="Recreate objects whose immutable fields changed.")
@click.option("--allow-empty", is_flag=True, help="Allow an empty desired set (prunes everything).")
@click.option("--mode", type=click.Choice(["render", "operator"]), default="render", show_default=True,
              help="render: spindle renders SpinApps; operator: apply SpinApps for spin-operator.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for health.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Parallel dry-runs.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig file.")
@click.option("--context", help="Kubeconfig context (default: the current one).")
@click.option("--history", "history_path", type=click.Path(dir_okay=False, path_type=Path),
              help="History database (default: in the state directory).")
def reconcile(source: str, **kw: Any) -> None:
    """Reconcile SOURCE on a schedule and on push webhooks."""
    from reconciler import engine
    from reconciler.history import History, HistoryError
    from reconciler.kube import errors as kube_errors
    from reconciler.kube import target
    from reconciler.loop import ReconcileLoop, RunOutcome, WebhookConfig, serve
    from reconciler.reports import render
    from reconciler.scheduler import Backoff, default_backoff
    from reconciler.source import GitSource, SourceConfigError
    from reconciler.statedir import state_dir
    from reconciler.webhook import parse_addr

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    interval: float = kw["interval"]
    if interval <= 0:
        raise click.BadParameter("must be positive", param_hint="--interval")
    webhook: WebhookConfig | None = None
    if kw["webhook_addr"] and not kw["once"]:
        try:
            host, port = parse_addr(kw["webhook_addr"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--webhook-addr") from None
        secret = _read_secret(kw["webhook_secret_file"], kw["webhook_secret_env"])
        webhook = WebhookConfig(host, port, secret, kw["max_payload"])

    local = Path(source).expanduser()
    as_is = not _URL.match(source) and local.is_dir() and not kw["ref"]
    if as_is:
        fetch = _local_fetcher(local.resolve())
        name = kw["source_name"] or local.resolve().name
    else:
        try:
            spec = _source_spec(source, kw)
            fetch = GitSource(spec, state_dir() / "git").fetch
        except SourceConfigError as exc:
            raise click.UsageError(str(exc)) from None
        name = kw["source_name"] or _default_name(source)
    options = engine.Options(
        detect_only=kw["detect_only"], prune=kw["prune"], force=kw["force"], allow_empty=kw["allow_empty"],
        mode=engine.Mode(kw["mode"]), path=kw["subpath"] if as_is else None, timeout=kw["timeout"],
        concurrency=kw["concurrency"],
    )
    try:
        tgt = target.connect(
            kubeconfig=kw["kubeconfig"], context=kw["context"],
            notice=lambda m: click.echo(m, err=True), timeout=max(kw["timeout"], 30.0),
        )
    except kube_errors.KubeError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_ERROR)

    def reconcile_fn(checkout: Path, *, source_name: str, revision: Revision | None) -> ReconcileRecord:
        rev = revision if revision and revision.sha else None
        return engine.reconcile(checkout, source_name=source_name, revision=rev, options=options,
                                client=tgt.client)

    def on_record(outcome: RunOutcome) -> None:
        if not kw["once"]:
            click.echo(_line(outcome.record, outcome.ok), err=True)

    try:
        history = History(kw["history_path"]) if kw["history_path"] else History()
    except HistoryError as exc:
        click.echo(f"Error: {exc}", err=True)
        tgt.close()
        sys.exit(EXIT_ERROR)
    loop = ReconcileLoop(source_name=name, fetch=fetch, reconcile=reconcile_fn, history=history,
                         on_record=on_record)
    try:
        if kw["once"]:
            outcome = loop.run_once()
            click.echo(render([outcome.record], "text"), nl=False)
            drifted = any(e.action in (Action.CREATED, Action.CONFIGURED, Action.PRUNED)
                          for e in outcome.record.entries)
            if not outcome.ok:
                sys.exit(EXIT_ERROR)
            sys.exit(EXIT_DRIFT if kw["detect_only"] and drifted else EXIT_OK)
        backoff = default_backoff(interval)
        if kw["retry_initial"] is not None or kw["retry_max"] is not None:
            initial = kw["retry_initial"] if kw["retry_initial"] is not None else backoff.initial
            backoff = replace(Backoff(), initial=initial, cap=max(initial, kw["retry_max"] or backoff.cap))
        jitter = kw["jitter"] if kw["jitter"] is not None else interval * 0.1
        click.echo(f"reconciling {name} every {interval:g}s (+ up to {jitter:g}s jitter) into "
                   f"{tgt.description}", err=True)
        try:
            code = serve(loop, interval=interval, jitter=jitter, backoff=backoff, webhook=webhook,
                         announce=lambda m: click.echo(m, err=True))
        except OSError as exc:  # runs never raise (the scheduler catches); this is the listener
            click.echo(f"Error: cannot listen on {kw['webhook_addr']}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_ERROR)
        sys.exit(code)
    finally:
        history.close()
        tgt.close()
