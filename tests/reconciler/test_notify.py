"""`--notify`: a signed generic event, a Slack message and GitHub/GitLab commit statuses, each
request checked against the documented shape by local HTTP receivers; debounced per revision and
outcome, retried, never failing the run, never carrying a secret value. Through the CLI against
kubesim and a real git repo."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from spindle_synclib import Cluster, apply, example_repo

from reconciler.notify import NotifyError, parse_spec

SECRET_VALUE = "s3cr3t-value-never-sent"
SECRET = (
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: apps\n"
    f"stringData:\n  password: {SECRET_VALUE}\n"
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    fail_first: int = 0  # answer 503 this many times first


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if state.fail_first > 0:
                state.fail_first -= 1
                self.send_response(503)
                self.end_headers()
                return
            state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def by_path(receiver: Receiver, prefix: str) -> list[Received]:
    return [r for r in receiver.requests if r.path.startswith(prefix)]


@pytest.mark.slow
def test_every_kind_gets_the_documented_request(
    tmp_path: Path, cluster: Cluster, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    repo.write("secret.yaml", SECRET)
    sha = repo.commit("a secret")
    (tmp_path / "gh-token").write_text("gh-token-123\n")
    env = {"SPINDLE_STATE_DIR": str(tmp_path / "state"), "HOOK_SECRET": "hmac-key", "GL_TOKEN": "gl-456"}
    link = "https://ci.example.com/jobs/7"
    notify = [
        "--notify", f"{receiver.url}/generic,secret-env=HOOK_SECRET",
        "--notify", f"slack:{receiver.url}/slack",
        "--notify", f"github:octo/shop,api={receiver.url}/gh,token-file={tmp_path / 'gh-token'}",
        "--notify", f"gitlab:group/shop,api={receiver.url}/gl/api/v4,token-env=GL_TOKEN",
        "--notify-link", link,
    ]
    run = apply(repo, cluster, *notify, env=env)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert run.json()["warnings"] == []

    (generic,) = by_path(receiver, "/generic")
    expected = "sha256=" + hmac.new(b"hmac-key", generic.body, hashlib.sha256).hexdigest()
    assert generic.headers["x-spindle-signature-256"] == expected
    assert generic.headers["x-spindle-event"] == "reconcile" and generic.headers["x-spindle-delivery"]
    assert generic.headers["content-type"] == "application/json"
    event = generic.json()
    assert event["kind"] == "ReconcileEvent" and event["outcome"] == "success" and event["revision"] == sha
    assert event["source"] == "repo" and event["link"] == link and event["counts"]["Created"] >= 3
    assert {"object": "Secret/apps/creds", "action": "Created", "health": "Healthy"} in event["changed"]

    (slack,) = by_path(receiver, "/slack")
    assert set(slack.json()) == {"text"} and f"repo @ {sha[:12]}: success" in slack.json()["text"]

    github = by_path(receiver, "/gh/")
    assert [r.path for r in github] == [f"/gh/repos/octo/shop/statuses/{sha}"] * 2
    assert [r.json()["state"] for r in github] == ["pending", "success"]
    for r in github:
        assert r.headers["authorization"] == "Bearer gh-token-123"
        assert r.headers["accept"] == "application/vnd.github+json"
        assert r.headers["x-github-api-version"] == "2022-11-28"
        body = r.json()
        assert set(body) == {"state", "description", "context", "target_url"}
        assert body["context"] == "spindle/repo" and body["target_url"] == link
        assert len(body["description"]) <= 140

    gitlab = by_path(receiver, "/gl/")
    assert [r.path for r in gitlab] == [f"/gl/api/v4/projects/group%2Fshop/statuses/{sha}"] * 2
    assert [r.json()["state"] for r in gitlab] == ["pending", "success"]
    for r in gitlab:
        assert r.headers["private-token"] == "gl-456"
        assert set(r.json()) == {"state", "name", "description", "target_url"}

    assert not any(SECRET_VALUE.encode() in r.body for r in receiver.requests)
    assert not any(b"gh-token-123" in r.body or b"gl-456" in r.body for r in receiver.requests)

    # Debounced: the same revision with the same outcome is not posted again.
    count = len(receiver.requests)
    again = apply(repo, cluster, *notify, env=env)
    assert again.exit_code == 0 and len(receiver.requests) == count


@pytest.mark.slow
def test_posts_are_retried_and_a_dead_receiver_is_only_a_warning(
    tmp_path: Path, cluster: Cluster, receiver: Receiver
) -> None:
    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    env = {"SPINDLE_STATE_DIR": str(tmp_path / "state")}
    receiver.fail_first = 2
    dead = "http://127.0.0.1:9/never"  # the discard port: nothing listens
    run = apply(repo, cluster, "--notify", f"{receiver.url}/generic", "--notify", dead, env=env)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert len(by_path(receiver, "/generic")) == 1  # after two 503s
    (warning,) = run.json()["warnings"]
    assert warning.startswith(f"notify generic:{dead}: cannot connect") and "after 3 attempts" in warning
    assert run.json()["ok"] is True


@pytest.mark.parametrize(
    ("spec", "kind", "target", "options"),
    [
        ("https://hooks.example.com/x", "generic", "https://hooks.example.com/x", {}),
        ("generic:http://h/x,secret-file=/s", "generic", "http://h/x", {"secret-file": "/s"}),
        ("slack:https://hooks.example.com/T/B", "slack", "https://hooks.example.com/T/B", {}),
        ("github:octo/shop,token-env=GH", "github", "octo/shop", {"token-env": "GH"}),
        ("gitlab:42,api=https://gl.example.com/v4", "gitlab", "42", {"api": "https://gl.example.com/v4"}),
    ],
)
def test_parse_spec(spec: str, kind: str, target: str, options: dict[str, str]) -> None:
    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.target, parsed.options) == (kind, target, options)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("teams:https://x", "KIND:TARGET"),
        ("github:", "names no target"),
        ("slack:not-a-url", "http(s) URL"),
        ("github:https://github.com/o/r", "OWNER/REPO"),
        ("github:o/r,secret-env=X", "unknown option 'secret-env'"),
    ],
)
def test_parse_spec_refuses(spec: str, message: str) -> None:
    with pytest.raises(NotifyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_spec(spec)


def test_a_bad_spec_is_a_usage_error(tmp_path: Path) -> None:
    from spindle_synclib import spindle

    run = spindle("apply", str(tmp_path), "--notify", "teams:https://x")
    assert run.exit_code == 2 and "--notify" in run.stderr


@pytest.mark.slow
def test_reconcile_once_posts_its_outcome(tmp_path: Path, cluster: Cluster, receiver: Receiver) -> None:
    from spindle_synclib import spindle

    repo = example_repo(tmp_path / "repo", apps=("alpha",))
    run = spindle("reconcile", str(repo.root), "--kubeconfig", str(cluster.kubeconfig), "--once",
                  "--history", str(tmp_path / "h.db"), "--timeout", "5", "--notify", f"{receiver.url}/hook",
                  env={"SPINDLE_STATE_DIR": str(tmp_path / "state")})
    assert run.exit_code == 0, run.stdout + run.stderr
    (posted,) = by_path(receiver, "/hook")
    assert posted.json()["outcome"] == "success" and posted.json()["revision"] == repo.git.head.commit.hexsha
