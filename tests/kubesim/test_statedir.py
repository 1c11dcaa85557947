"""Where spindle keeps state (reconciler.statedir): the precedence of the environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import statedir


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SPINDLE_STATE_DIR": "/s", "XDG_STATE_HOME": "/x", "HOME": "/h"}, "/s"),
        ({"XDG_STATE_HOME": "/x", "HOME": "/h"}, "/x/spindle"),
        ({"HOME": "/h"}, "/h/.local/state/spindle"),
        ({"SPINDLE_STATE_DIR": "", "XDG_STATE_HOME": "", "HOME": "/h"}, "/h/.local/state/spindle"),
    ],
)
def test_state_dir_precedence(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    for key in ("SPINDLE_STATE_DIR", "XDG_STATE_HOME", "HOME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert statedir.state_dir() == Path(expected)
    assert statedir.cluster_dir() == Path(expected) / "cluster"
