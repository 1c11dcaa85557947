"""The README's main command, exactly: `spindle apply example-repo && spindle report`, with a fresh
state directory and no kubeconfig, run as processes from the repository root. It reconciles the
example into the embedded cluster, prints the summary, then the drift report from the history.
And the progress is a spinner on a terminal, plain lines elsewhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from spindle_synclib import no_cluster_env, process_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def spindle_process(
    env: dict[str, str], *args: str, stderr: int = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler.cli", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=240,
    )


def test_apply_example_repo_then_report(tmp_path: Path) -> None:
    env = process_env(no_cluster_env(tmp_path))
    applied = spindle_process(env, "apply", "example-repo")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "No kubeconfig found: using the embedded kubesim cluster" in applied.stderr
    lines = applied.stdout.splitlines()
    assert lines[0].startswith("example-repo @ ") and lines[0].endswith("(apply)")
    rows = {line.split()[0]: line.split()[1:3] for line in lines[1:-1]}
    # Whatever apps the example holds: each SpinApp and the Deployment rendered for it were
    # created and reported healthy (the embedded cluster simulates the rollout).
    spinapps = [subject.split("/", 1)[1] for subject in rows if subject.startswith("SpinApp/")]
    assert spinapps, rows
    for app in spinapps:
        assert rows[f"SpinApp/{app}"] == ["Created", "Healthy"]
        assert rows[f"Deployment/{app}"] == ["Created", "Healthy"]
    assert any(subject.startswith("RuntimeClass/") for subject in rows)  # from the Shim
    summary = lines[-1]
    assert summary == f"{len(rows)} created"

    reported = spindle_process(env, "report")
    assert reported.returncode == 0, reported.stdout + reported.stderr
    report = reported.stdout
    assert report.startswith("== example-repo  [changes applied]")
    assert f"summary:  {summary}" in report
    assert re.search(r"^revision: [0-9a-f]{12} by .+ at \d{4}-\d\d-\d\d", report, re.MULTILINE)
    for subject, (action, health) in rows.items():
        assert re.search(rf"^  {re.escape(subject)} +{action} +{health}$", report, re.MULTILINE), subject

    # The embedded cluster kept its state: the same command again changes nothing.
    again = spindle_process(env, "apply", "example-repo")
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == f"{len(rows)} unchanged"
    recent = spindle_process(env, "report", "--since", "10m", "-o", "json")
    records = json.loads(recent.stdout)
    assert [r["mode"] for r in records] == ["apply", "apply"]
    assert [r["ok"] for r in records] == [True, True]


def test_progress_is_a_spinner_on_a_terminal_and_lines_elsewhere(tmp_path: Path) -> None:
    env = process_env({**no_cluster_env(tmp_path), "TERM": "xterm"})
    terminal, child_side = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # read while the child writes, so a full pty buffer never blocks it
        while True:
            try:
                data = os.read(terminal, 4096)
            except OSError:  # EIO: the child closed its side
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        on_tty = spindle_process(env, "apply", "example-repo", "--no-history", stderr=child_side)
    finally:
        os.close(child_side)
    reader.join(timeout=10)
    os.close(terminal)
    shown = b"".join(chunks).decode(errors="replace")
    assert on_tty.returncode == 0
    # The spinner started (hiding the cursor) and showed the health wait, which lasts at least the
    # embedded cluster's simulated 0.5 s rollout, so several frames show it whatever the load.
    assert "\x1b[?25l" in shown and "waiting for" in shown

    piped = spindle_process(env, "diff", "example-repo")
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert "\x1b[" not in piped.stderr  # off a terminal: plain lines, one per change of state
    assert piped.stderr.startswith("No kubeconfig found")
    progress = piped.stderr.splitlines()[1:]
    assert progress and all(line.startswith("spindle: ") for line in progress), piped.stderr
    assert len(progress) == len(set(progress))
