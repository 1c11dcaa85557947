"""`spindle diff`, `apply` and `reconcile` take SOURCE and its options the same way: a Git URL
(here file:// and a private smart-HTTP remote behind a token) with `--ref`, `--path` and
`--name`, credentials and signature checks, and a clear exit 2 for options that cannot apply."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from spindle_gitfixtures import Remote, git_http_server, ssh_signing_key
from spindle_synclib import EXECUTOR, NAMESPACE, Cluster, spinapp, spindle

from reconciler.cli.options import default_name

pytestmark = pytest.mark.slow

COMMANDS = ("diff", "apply", "reconcile")


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("https://git.example/team/shop.git", "shop"),
        ("git@git.example:team/shop.git", "shop"),
        ("ssh://git@git.example/team/shop/", "shop"),
        ("file:///srv/git/shop.git", "shop"),
        ("/srv/git/shop.git", "shop"),
    ],
)
def test_default_source_name(source: str, name: str) -> None:
    assert default_name(source) == name


def test_default_name_of_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shop").mkdir()
    monkeypatch.chdir(tmp_path / "shop")
    assert default_name(".") == "shop"


def app_files(*apps: str) -> dict[str, str]:
    return {
        "deploy/namespace.yaml": NAMESPACE,
        "deploy/executor.yaml": EXECUTOR,
        **{f"deploy/apps/{name}.yaml": spinapp(name) for name in apps},
        "docs/README.md": "not rendered\n",
    }


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A bare remote whose tag v1 has alpha and whose main has alpha and beta."""
    r = Remote(tmp_path / "upstream")
    r.commit(app_files("alpha"), "alpha")
    r.tag("v1.0.0")
    r.commit(app_files("alpha", "beta"), "beta")
    r.push()
    return r


def run(command: str, source: str, cluster: Cluster, tmp_path: Path, *extra: str,
        env: dict[str, str] | None = None) -> tuple[int, str, str]:
    once = ("--once",) if command == "reconcile" else ()
    json_out = ("-o", "json") if command != "reconcile" else ()
    result = spindle(
        command, source, *once, *json_out, "--kubeconfig", str(cluster.kubeconfig), "--timeout", "5",
        *(("--history", str(tmp_path / "history.sqlite")) if command != "diff" else ()), *extra,
        env={"SPINDLE_STATE_DIR": str(tmp_path / "state"), **(env or {})},
    )
    return result.exit_code, result.stdout, result.stderr


def test_diff_then_apply_a_git_url_at_a_tag_with_path_and_name(
    remote: Remote, cluster: Cluster, tmp_path: Path
) -> None:
    tag_sha = remote.commit_of("v1.0.0")
    args = ("--ref", "tag:v1.0.0", "--path", "deploy", "--name", "shop")
    code, out, err = run("diff", remote.url, cluster, tmp_path, *args)
    assert code == 1, out + err  # nothing applied yet: everything is drift
    doc = json.loads(out)
    assert doc["source"] == "shop" and doc["revision"]["sha"] == tag_sha
    assert doc["drift"] is True and doc["mode"] == "dry-run"
    assert "+  image: ghcr.io/example/alpha:v1" in doc["diffs"]["SpinApp/apps/alpha"]  # a unified diff
    subjects = {e["subject"] for e in doc["entries"]}
    assert "SpinApp/apps/alpha" in subjects and "SpinApp/apps/beta" not in subjects

    code, out, err = run("apply", remote.url, cluster, tmp_path, *args)
    assert code == 0, out + err
    assert cluster.get("apps/v1", "Deployment", "alpha") is not None
    assert cluster.get("apps/v1", "Deployment", "beta") is None
    inventory = cluster.get("v1", "ConfigMap", "spindle-inventory-shop", "spindle-system")
    assert inventory is not None  # --name names the owner

    assert run("diff", remote.url, cluster, tmp_path, *args)[0] == 0
    code, out, _ = run("diff", remote.url, cluster, tmp_path, "--ref", "main", "--path", "deploy",
                       "--name", "shop")
    assert code == 1 and "SpinApp/apps/beta" in out  # a bare ref is a branch


@pytest.mark.parametrize("command", COMMANDS)
def test_private_https_repo_with_a_token_from_the_environment(
    command: str, remote: Remote, cluster: Cluster, tmp_path: Path
) -> None:
    token = "ci-token-123"
    expected = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    with git_http_server(remote.bare.parent, expected) as server:
        url = f"http://127.0.0.1:{server.server_port}/remote.git"
        auth = ("--path", "deploy", "--token-env", "GIT_TOKEN", "--username", "x-access-token")
        code, out, err = run(command, url, cluster, tmp_path, *auth, env={"GIT_TOKEN": token})
        assert code == (1 if command == "diff" else 0), out + err
        assert expected in server.seen_auth
        assert "remote" in out  # the source is named after the repository

        code, out, err = run(command, url, cluster, tmp_path / "other", *auth, env={"GIT_TOKEN": "wrong"})
        assert code == 2
        assert f"127.0.0.1:{server.server_port}/remote.git" in out + err  # the error names the source
        assert "wrong" not in out + err  # and never the token


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unsigned_head_is_refused(command: str, remote: Remote, cluster: Cluster, tmp_path: Path) -> None:
    _, signer = ssh_signing_key(tmp_path, "release")
    signers = tmp_path / "allowed_signers"
    signers.write_text(signer + "\n")
    code, out, err = run(command, remote.url, cluster, tmp_path, "--path", "deploy",
                         "--verify-allowed-signers", str(signers))
    assert code == 2
    assert "is not signed" in out + err
    assert cluster.get("apps/v1", "Deployment", "alpha") is None


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--ref", "release:v1"), "the kind must be one of branch, tag, semver, commit"),
        (("--ref", "tag:"), "names no tag"),
        (("--ref", "semver:not a range"), "semver"),
        (("--token-env", "GIT_TOKEN"), "--token-env needs a Git fetch"),
        (("--path", "nope"), "'nope' is not a directory in"),
    ],
)
def test_bad_source_options_exit_2_before_touching_the_cluster(
    command: str, extra: tuple[str, ...], message: str, remote: Remote, cluster: Cluster, tmp_path: Path
) -> None:
    code, out, err = run(command, str(remote.work), cluster, tmp_path, *extra)
    assert code == 2, out + err
    assert message in err
    assert cluster.client.list("v1", "Namespace", label_selector="spindle.dev/source") == []
