"""`spindle report`: print reconcile records from the history as text, json, markdown or html."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from reconciler.cli.options import parse_duration


def parse_since(text: str, now: datetime) -> datetime:
    """`90m`, `2h`, `7d`, `1w`, `1h30m` back from now, or an RFC 3339 / ISO time (naive means UTC)."""
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration like 2h / 7d nor a time like 2026-05-01T10:00:00Z",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("report")
@click.option("--last", "last", type=click.IntRange(min=1), help="The newest N records (default 1).")
@click.option("--revision", metavar="SHA", help="Records of revisions whose sha starts with SHA.")
@click.option("--since", metavar="TIME", help="Records started since TIME (RFC 3339, or 30m, 2h, 7d).")
@click.option("--source", metavar="NAME", help="Only records of this source.")
@click.option(
    "-o", "--output", type=click.Choice(["text", "json", "markdown", "html"]), default="text",
    show_default=True, help="Output format; html is one self-contained file.",
)
@click.option(
    "--history", "history_path", type=click.Path(dir_okay=False, path_type=Path),
    help="History database (default: history.sqlite in spindle's state directory).",
)
def report(
    last: int | None, revision: str | None, since: str | None, source: str | None, output: str,
    history_path: Path | None,
) -> None:
    """Print drift reports from the reconcile history."""
    from reconciler.history import History, HistoryError, default_path
    from reconciler.reports import render

    chosen = [name for name, value in (("--last", last), ("--revision", revision), ("--since", since))
              if value is not None]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} cannot be combined; pick one")
    if revision is not None and not re.fullmatch(r"[0-9a-fA-F]{4,40}", revision):
        raise click.BadParameter(
            f"{revision!r} is not a hex sha prefix (4-40 digits)", param_hint="--revision"
        )
    moment = parse_since(since, datetime.now(UTC)) if since is not None else None

    path = history_path or default_path()
    if not path.exists():
        click.echo(f"no reconcile history yet at {path}", err=True)
        click.echo(render([], output), nl=False)
        return
    try:
        with History(path) as history:
            if revision is not None:
                records = history.by_revision(revision, source=source)
            elif moment is not None:
                records = history.since(moment, source=source)
            else:
                records = history.last(last or 1, source=source)
    except HistoryError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    click.echo(render(records, output), nl=False)
