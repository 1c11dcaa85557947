"""URL handling and the per-command git environment (credentials wiring)."""

from __future__ import annotations

import base64
import shlex
from pathlib import Path

import pytest

from reconciler.source.auth import git_env, normalise_url, redact, split_credentials
from reconciler.source.errors import SourceConfigError
from reconciler.source.model import Auth


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("file:///srv/r.git", "file:///srv/r.git"),
    ],
)
def test_normalise_keeps_urls(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


def test_normalise_turns_paths_into_file_urls(tmp_path: Path) -> None:
    assert normalise_url(str(tmp_path / "r.git")) == (tmp_path / "r.git").as_uri()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://bob:hunter2@h.example/r.git", "https://bob:***@h.example/r.git"),
        ("fatal: https://x:y@h/r not found", "fatal: https://x:***@h/r not found"),
        ("ssh://git@h.example/r.git", "ssh://git@h.example/r.git"),
        ("https://h.example/r.git", "https://h.example/r.git"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_given_secrets() -> None:
    assert redact("header tok123 sent", "tok123") == "header *** sent"


def test_split_credentials() -> None:
    assert split_credentials("https://bob:tok@h.example:8443/r.git") == (
        "https://h.example:8443/r.git", "bob", "tok")
    assert split_credentials("https://h.example/r.git") == ("https://h.example/r.git", None, None)


def test_ssh_is_always_strict(tmp_path: Path) -> None:
    env = git_env("git@github.com:o/r.git", Auth(), None)
    argv = shlex.split(env["GIT_SSH_COMMAND"])
    assert "StrictHostKeyChecking=yes" in argv and "BatchMode=yes" in argv
    key, known = tmp_path / "id", tmp_path / "known hosts"
    env = git_env("ssh://git@h/r.git", Auth(ssh_key=key, known_hosts=known), None)
    argv = shlex.split(env["GIT_SSH_COMMAND"])
    assert argv[argv.index("-i") + 1] == str(key)
    assert f"UserKnownHostsFile={known}" in argv and "IdentitiesOnly=yes" in argv


def test_token_goes_into_env_config_only() -> None:
    env = git_env("https://h.example/r.git", Auth(username="x-access-token"), "tok")
    count = int(env["GIT_CONFIG_COUNT"])
    keys = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(count)}
    basic = base64.b64encode(b"x-access-token:tok").decode()
    assert keys["http.extraHeader"] == f"Authorization: Basic {basic}"
    assert keys["credential.helper"] == ""
    assert "GIT_SSH_COMMAND" not in env


@pytest.mark.parametrize("url", ["ssh://git@h/r.git", "file:///r.git", "http://h.example/r.git"])
def test_token_refused_where_it_would_leak_or_mean_nothing(url: str) -> None:
    with pytest.raises(SourceConfigError):
        git_env(url, Auth(), "tok")


def test_token_allowed_over_http_to_loopback() -> None:
    assert "GIT_CONFIG_COUNT" in git_env("http://127.0.0.1:9/r.git", Auth(), "tok")
