"""What a new user meets first, end to end through the CLI: the README's quickstart line, whole
object names in the summary, the hint after a failed render, one exit-code rule for invalid input,
a mistyped local path, and progress that names what it waits for on any stderr."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from spindle_synclib import (
    EXECUTOR,
    NAMESPACE,
    Cluster,
    Repo,
    apply_args,
    example_repo,
    kubesim_cluster,
    no_cluster_env,
    process_env,
    spinapp,
    spindle,
)

from reconciler.cli.sync_cmds import summary_table, table_width
from reconciler.ssa.manager import waiting_message

ROOT = Path(__file__).resolve().parents[2]
BROKEN = (
    "apiVersion: core.spinkube.dev/v1alpha1\nkind: SpinApp\n"
    "metadata:\n  name: broken\n  namespace: apps\nspec:\n  replicas: 1\n"
)


def quickstart_command() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    match = re.search(r"```sh\n\s*(.+?)\n\s*```", section, re.DOTALL)
    assert match, "the Quickstart has no sh block"
    return match.group(1).strip()


def test_the_quickstart_installs_into_a_venv_and_runs_the_tested_command() -> None:
    steps = [shlex.split(step) for step in quickstart_command().split("&&")]
    commands = [" ".join(step) for step in steps]
    venv = commands.index("python3 -m venv .venv")
    activate = commands.index(". .venv/bin/activate")
    install = next(i for i, c in enumerate(commands) if c.endswith("pip install -e ."))
    # PEP 668: no pip into the system Python; the venv module is a separate Debian package
    assert venv < activate < install
    apt = [" ".join(step) for step in steps[:venv]]
    assert any("python3-venv" in step and "DPkg::Lock::Timeout=600" in step for step in apt)
    # what test_readme_command.py runs, exactly
    assert commands[install + 1:] == ["spindle apply example-repo", "spindle report"]
    assert "DPkg::Lock::Timeout=600" in (ROOT / "scripts" / "test").read_text()


@pytest.mark.parametrize(
    "subject",
    [
        "Deployment/spin-apps/hello-world-with-a-rather-long-name",
        "HorizontalPodAutoscaler/a-namespace-with-a-long-name/an-app-with-an-even-longer-name-than-that",
    ],
)
def test_the_summary_table_never_cuts_a_name(subject: str) -> None:
    from rich.console import Console

    rows = [(subject, "Configured", "Progressing", "timed out waiting for health")]
    console = Console(width=table_width(rows), record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(summary_table("t", rows))
    text = console.export_text()
    assert subject in text and "Configured" in text and "Progressing" in text and "…" not in text


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "waiting for 1 object to become healthy (up to 60s): Deployment/apps/a0 (Unknown)"),
        (2, "waiting for 2 objects to become healthy (up to 60s): Deployment/apps/a0 (Unknown), "
            "Deployment/apps/a1 (Unknown)"),
        (7, "waiting for 7 objects to become healthy (up to 60s): " + ", ".join(
            f"Deployment/apps/a{i} (Unknown)" for i in range(5)) + " and 2 more"),
    ],
)
def test_the_waiting_message_names_the_objects(count: int, expected: str) -> None:
    from reconciler.changeset import Action, Health, ObjectRef
    from reconciler.ssa.manager import Outcome

    todo = [
        Outcome(ObjectRef("apps/v1", "Deployment", "apps", f"a{i}"), Action.CREATED, health=Health.UNKNOWN)
        for i in range(count)
    ]
    assert waiting_message(todo, "to become healthy", 60.0) == expected
    crd_ref = ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "a.b")
    crd = Outcome(crd_ref, Action.CREATED)
    assert waiting_message([crd], "to be established", 5) == (
        "waiting for 1 object to be established (up to 5s): CustomResourceDefinition/a.b"
    )


def run_in_pty(env: dict[str, str], *args: str) -> tuple[int, str]:
    terminal, child = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(terminal, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=ROOT, env=env,
                              stdout=child, stderr=subprocess.DEVNULL, timeout=240)
    finally:
        os.close(child)
    reader.join(timeout=10)
    os.close(terminal)
    return done.returncode, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_an_80_column_terminal_shows_whole_object_names(tmp_path: Path) -> None:
    long_name = "hello-world-with-a-name-long-enough-to-be-cut-at-80"
    repo = Repo(tmp_path / "repo")
    repo.write("namespace.yaml", NAMESPACE)
    repo.write("executor.yaml", EXECUTOR)
    repo.write("apps/app.yaml", spinapp(long_name))
    repo.commit("apps")
    env = process_env({**no_cluster_env(tmp_path), "TERM": "xterm", "COLUMNS": "80", "LINES": "40"})
    code, shown = run_in_pty(env, "apply", str(repo.root), "--no-history")
    assert code == 0, shown
    assert f"Deployment/apps/{long_name}" in shown and "…" not in shown


@pytest.mark.slow
def test_a_failed_render_says_to_fix_it_and_exits_1_like_validate(tmp_path: Path, cluster: Cluster) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("apps/broken.yaml", BROKEN)
    repo.commit("broken only")
    run = spindle(*apply_args(repo, cluster))
    assert run.exit_code == 1, run.stdout + run.stderr
    assert "fix the errors above" in run.stdout and "--allow-empty" not in run.stdout
    allowed = spindle(*apply_args(repo, cluster, "--allow-empty"))
    assert allowed.exit_code == 1 and "--allow-empty" not in allowed.stdout


@pytest.mark.slow
def test_invalid_input_exits_1_from_every_command(tmp_path: Path, cluster: Cluster) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    repo.write("apps/broken.yaml", BROKEN)
    repo.commit("one broken app")
    kc = ("--kubeconfig", str(cluster.kubeconfig))
    assert spindle("validate", str(repo.root)).exit_code == 1
    assert spindle("render", str(repo.root)).exit_code == 1
    assert spindle("diff", str(repo.root), *kc).exit_code == 1
    applied = spindle(*apply_args(repo, cluster))
    assert applied.exit_code == 1, applied.stdout + applied.stderr
    assert cluster.get("apps/v1", "Deployment", "alpha") is not None  # the valid app still went out
    once = spindle("reconcile", str(repo.root), *kc, "--once", "--interval", "1m",
                   "--history", str(tmp_path / "h.db"), "--timeout", "5")
    assert once.exit_code == 1, once.stdout + once.stderr


def test_a_mistyped_local_path_is_no_such_directory(tmp_path: Path) -> None:
    for command in ("apply", "diff", "reconcile"):
        run = spindle(command, str(tmp_path / "exmaple-repo"), "--kubeconfig", str(tmp_path / "kc"))
        assert run.exit_code == 2
        assert "exmaple-repo: no such directory" in run.stderr and "ls-remote" not in run.stderr
    (tmp_path / "file").write_text("")
    run = spindle("apply", str(tmp_path / "file"))
    assert run.exit_code == 2 and "is not a directory" in run.stderr


@pytest.mark.slow
def test_waiting_for_health_off_a_terminal_names_the_objects_once_per_change(tmp_path: Path) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    with kubesim_cluster(tmp_path / "kc", simulate_workloads=False) as cluster:
        run = spindle(*apply_args(repo, cluster, "--timeout", "1.5"))
    lines = run.stderr.splitlines()
    waits = [line for line in lines if line.startswith("spindle: waiting for ") and "(up to 1.5s)" in line]
    assert waits, run.stderr
    healthy = [line for line in waits
               if "to become healthy" in line and line.endswith(": Deployment/apps/alpha (Progressing)")]
    assert healthy, run.stderr
    assert all(a != b for a, b in itertools.pairwise(lines))  # a line per change of state
    assert "timed out waiting for health" in run.stdout
