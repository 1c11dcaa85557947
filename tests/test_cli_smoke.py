import subprocess
import sys


def test_spindle_help_lists_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "reconciler.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("render", "validate", "scaffold", "cluster", "diff", "apply", "reconcile", "report", "shim"):
        assert name in out


def test_unknown_command_is_a_usage_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
