"""Report renderers (text, json, markdown, html) and `spindle report` through the CLI."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from spindle_records import SECRET_VALUE, drift_record

from reconciler.cli import cli
from reconciler.history import History
from reconciler.reports import Format, render
from reconciler.reports.records import record_from_dict

FORMATS = [f.value for f in Format]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_carries_the_audit_facts(fmt: str) -> None:
    out = render([drift_record()], fmt)
    facts = [
        "example",  # source
        "3f2a9c1d7e5b4a6c8d0e1f2a3b4c5d6e7f8a9b0c" if fmt in ("json", "markdown", "html") else "3f2a9c1d7e5b",
        "Ada Author",
        "Scale hello to 2",
        "Deployment/default/hello",
        "Configured",
        "Healthy",
        ".spec.replicas",
        "kubectl-scale",
        "kubectl-edit",
        "RuntimeClass/wasmtime-spin-v2",
        "/spec/replicas",
    ]
    if fmt != "json":
        facts += ["2026-05-04 10:02:00 UTC", "2026-05-04 10:05:00 UTC", "2026-05-04 10:05:03 UTC"]
    for fact in facts:
        assert fact in out, (fmt, fact)
    assert SECRET_VALUE not in out


@pytest.mark.parametrize(
    ("mode", "failed", "status"),
    [
        ("apply", False, "changes applied"),
        ("detect-only", False, "drift detected"),
        ("apply", True, "failed"),
    ],
)
def test_status_words(mode: str, failed: bool, status: str) -> None:
    record = dataclasses.replace(drift_record(), mode=mode)
    if not failed:
        record.entries = [e for e in record.entries if e.action.value != "Failed"]
    assert f"[{status}]" in render([record], "text")


def test_text_shows_live_and_desired_and_owner() -> None:
    out = render([drift_record()], "text")
    assert ".spec.replicas: 5 -> 2" in out
    assert "owned by kubectl-scale (Update) at 2026-05-04 10:02:00 UTC" in out
    assert ".metadata.labels.hotfix: yes -> (absent)" in out
    assert "1 created, 2 configured, 1 failed, 1 unchanged" in out


def test_json_round_trips() -> None:
    record = drift_record()
    (data,) = json.loads(render([record], "json"))
    assert data["ok"] is False  # one Failed entry
    assert data["entries"][0]["subject"] == "Deployment/default/hello"
    back = record_from_dict(data)
    assert back.entries[0] == record.entries[0]
    assert back.revision == record.revision


def test_markdown_escapes_table_cells() -> None:
    out = render([drift_record()], "markdown")
    row = next(line for line in out.splitlines() if "bad" in line and line.startswith("| `ConfigMap"))
    # Four columns survive a name and message holding a pipe.
    assert len(re.findall(r"(?<!\\)\|", row)) == 5


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset", "data")]


def test_html_is_self_contained_and_escaped() -> None:
    record = drift_record(message="<script>alert('x')</script> & <img src=http://evil.example/x.png>")
    record.entries[0] = dataclasses.replace(record.entries[0], message='"><a href="https://evil.example">x</a>')
    out = render([record], "html")
    parser = _Collector()
    parser.feed(out)
    assert out.startswith("<!DOCTYPE html>")
    assert "style" in parser.tags
    assert "script" not in parser.tags and "img" not in parser.tags and "link" not in parser.tags
    assert not [u for u in parser.urls if re.match(r"(?i)\s*(https?:)?//", u)]
    assert not re.search(r"url\(", out)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in out
    assert SECRET_VALUE not in out


def test_html_lists_every_record() -> None:
    out = render([drift_record(), drift_record(source="other", sha="9" * 40)], "html")
    assert "<title>spindle drift report: example, other</title>" in out
    assert out.count('<section class="record" id="record-') == 2
    assert '<a href="#record-1">other</a>' in out  # the index links inside the page only
    assert "2 reconcile record(s)" in out


def test_empty_inputs() -> None:
    assert "no reconcile records" in render([], "text")
    assert json.loads(render([], "json")) == []
    assert "No reconcile records" in render([], "html")


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPINDLE_STATE_DIR", str(tmp_path / "state"))
    with History(tmp_path / "state" / "history.sqlite") as h:
        h.add(drift_record(source="shop", sha="aaaa" + "1" * 36, started="2026-05-01T10:00:00Z"))
        h.add(drift_record(source="blog", sha="bbbb" + "2" * 36, started="2026-05-02T10:00:00Z"))
        h.add(drift_record(source="shop", sha="cccc" + "3" * 36, started="2026-05-03T10:00:00Z"))
    return tmp_path / "state"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["report", *args])
    return result.exit_code, result.stdout, result.stderr


def _shas(out: str) -> list[str]:
    return [r["revision"]["sha"][:4] for r in json.loads(out)]


def test_cli_queries(state: Path) -> None:
    code, out, _ = _run("-o", "json")
    assert code == 0 and _shas(out) == ["cccc"]
    assert _shas(_run("--last", "2", "-o", "json")[1]) == ["cccc", "bbbb"]
    assert _shas(_run("--last", "5", "--source", "shop", "-o", "json")[1]) == ["cccc", "aaaa"]
    assert _shas(_run("--revision", "bbbb", "-o", "json")[1]) == ["bbbb"]
    assert _shas(_run("--since", "2026-05-02T00:00:00Z", "-o", "json")[1]) == ["cccc", "bbbb"]
    assert _shas(_run("--since", "1h", "-o", "json")[1]) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_formats(state: Path, fmt: str) -> None:
    code, out, _ = _run("--last", "3", "-o", fmt)
    assert code == 0 and "Deployment/default/hello" in out and SECRET_VALUE not in out


@pytest.mark.parametrize(
    "args",
    [
        ["--last", "1", "--revision", "abcd"],
        ["--since", "yesterday"],
        ["--revision", "xyz!"],
        ["--last", "0"],
    ],
)
def test_cli_bad_input_exits_2(state: Path, args: list[str]) -> None:
    code, _, err = _run(*args)
    assert code == 2 and err


def test_cli_without_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPINDLE_STATE_DIR", str(tmp_path / "empty"))
    code, out, err = _run()
    assert code == 0 and "no reconcile history yet" in err and "no reconcile records" in out
    assert not (tmp_path / "empty").exists()


def test_record_times_are_precise_enough_for_the_reported_duration() -> None:
    """A reconcile takes about a second: whole-second start/finish times made every report say
    "(0.00s)" or "(1.00s)" whatever the run really took."""
    import time

    from reconciler import engine
    from reconciler.reports import common

    first = engine._now()
    time.sleep(0.05)
    record = dataclasses.replace(drift_record(), started=first, finished=engine._now())
    seconds = float(common.duration(record).rstrip("s"))
    # No upper wall-clock bound (a busy box may oversleep): whole-second stamps give 0 or a whole number.
    assert seconds >= 0.04 and seconds != int(seconds), seconds


def test_text_report_messages_line_up_whatever_the_health() -> None:
    from reconciler.changeset import Health

    record = drift_record()
    record.entries = [
        dataclasses.replace(e, health=h, message="would be configured")
        for e, h in zip(record.entries[:2], (Health.HEALTHY, Health.PROGRESSING), strict=True)
    ]
    out = render([record], "text")
    rows = [line for line in out.splitlines() if line.endswith("would be configured")]
    assert len(rows) == 2 and len({r.index("would be configured") for r in rows}) == 1
