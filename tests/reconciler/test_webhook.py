"""Webhooks: signature checks (pure) and the real server driving a real loop."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from spindle_loopfixtures import FileReconciler, free_port, get, post, sign, wait_for

from reconciler.changeset import Revision
from reconciler.loop import ReconcileLoop, WebhookConfig, serve
from reconciler.source import FetchResult
from reconciler.webhook import Provider, parse_addr, verify

SECRET = b"webhook-secret"
BODY = json.dumps({"ref": "refs/heads/main", "after": "abc"}).encode()


@pytest.mark.parametrize(
    ("headers", "provider", "triggers"),
    [
        ({"X-Hub-Signature-256": sign(SECRET, BODY), "X-GitHub-Event": "push"}, Provider.GITHUB, True),
        ({"x-hub-signature-256": sign(SECRET, BODY)}, Provider.GITHUB, True),  # names are case-insensitive
        ({"X-Hub-Signature-256": sign(SECRET, BODY), "X-GitHub-Event": "ping"}, Provider.GITHUB, False),
        ({"X-Hub-Signature-256": sign(b"other", BODY)}, None, None),
        ({"X-Hub-Signature-256": sign(SECRET, BODY + b" ")}, None, None),
        ({"X-Hub-Signature-256": sign(SECRET, BODY).replace("sha256=", "sha1=")}, None, None),
        ({"X-Hub-Signature-256": ""}, None, None),
        ({"X-Gitlab-Token": "webhook-secret", "X-Gitlab-Event": "Push Hook"}, Provider.GITLAB, True),
        ({"X-Gitlab-Token": "webhook-secret", "X-Gitlab-Event": "Tag Push Hook"}, Provider.GITLAB, True),
        ({"X-Gitlab-Token": "webhook-secret", "X-Gitlab-Event": "Note Hook"}, Provider.GITLAB, False),
        ({"X-Gitlab-Token": "wrong"}, None, None),
        ({"X-Spindle-Signature-256": sign(SECRET, BODY)}, Provider.GENERIC, True),
        ({"X-Spindle-Signature-256": sign(SECRET, b"{}")}, None, None),
        ({}, None, None),
        ({"Content-Type": "application/json"}, None, None),
    ],
)
def test_verify(headers: dict[str, str], provider: Provider | None, triggers: bool | None) -> None:
    delivery = verify(headers, BODY, SECRET)
    if provider is None:
        assert delivery is None
    else:
        assert delivery is not None and delivery.provider is provider and delivery.triggers is triggers


@pytest.mark.parametrize(
    ("text", "expected"),
    [(":8080", ("127.0.0.1", 8080)), ("0.0.0.0:9", ("0.0.0.0", 9)), ("[::1]:80", ("::1", 80))],
)
def test_parse_addr(text: str, expected: tuple[str, int]) -> None:
    assert parse_addr(text) == expected


@pytest.mark.parametrize("bad", ["8080", "host:", "host:99999", "host:http"])
def test_parse_addr_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_addr(bad)


@dataclass
class Running:
    url: str
    engine: FileReconciler
    loop: ReconcileLoop
    checkout: Path


@pytest.fixture
def running(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Running]:
    delay = getattr(request, "param", 0.0)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "app.yaml").write_text("v1")
    engine = FileReconciler(delay=delay)

    def fetch() -> FetchResult:
        return FetchResult(checkout=checkout, revision=Revision(sha="a" * 40), changed=True)

    loop = ReconcileLoop(source_name="demo", fetch=fetch, reconcile=engine, history=None)
    stop = threading.Event()
    port = free_port()
    thread = threading.Thread(
        target=serve, args=(loop,),
        kwargs={"interval": 3600, "webhook": WebhookConfig("127.0.0.1", port, SECRET, 4096), "stop": stop,
                "handle_signals": False},
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:  # stop the server even when it never came up
        assert wait_for(lambda: _up(url), timeout=10)
        yield Running(url, engine, loop, checkout)
    finally:
        stop.set()
        thread.join(timeout=20)


def _up(url: str) -> bool:
    try:
        return get(url + "/healthz")[0] == 200
    except OSError:
        return False


GITHUB = {"X-GitHub-Event": "push", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    "headers",
    [
        {**GITHUB, "X-Hub-Signature-256": sign(SECRET, BODY)},
        {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode()},
        {"X-Spindle-Signature-256": sign(SECRET, BODY)},
    ],
    ids=["github", "gitlab", "generic"],
)
def test_valid_push_starts_a_reconcile_within_one_second(running: Running, headers: dict[str, str]) -> None:
    # The first (startup) run must have finished, so the push is not queued behind it.
    assert wait_for(lambda: len(running.engine.finished_at) == 1 and running.loop.ready)
    time.sleep(0.2)
    t0 = time.monotonic()  # before the request: an upper bound on push-to-start latency
    assert post(running.url + "/hook", BODY, headers) == 202
    # Wait generously, then judge the recorded start: a slow box fails with the real latency.
    assert wait_for(lambda: running.engine.runs == 2, timeout=10)
    latency = running.engine.started_at[1] - t0
    assert latency < 1.0, f"reconcile started {latency:.2f}s after the push"


@pytest.mark.parametrize(
    "headers",
    [
        {**GITHUB, "X-Hub-Signature-256": sign(b"guess", BODY)},
        {**GITHUB},
        {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"},
        {"X-Spindle-Signature-256": "sha256=" + "0" * 64},
    ],
    ids=["github-bad", "missing", "gitlab-bad", "generic-bad"],
)
def test_bad_signature_gets_401_and_nothing_runs(running: Running, headers: dict[str, str]) -> None:
    assert wait_for(lambda: running.engine.runs == 1)
    assert post(running.url + "/hook", BODY, headers) == 401
    time.sleep(1.5)
    assert running.engine.runs == 1


def test_ping_and_limits(running: Running) -> None:
    assert wait_for(lambda: running.engine.runs == 1)
    ping = {"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(SECRET, b"{}")}
    assert post(running.url + "/hook", b"{}", ping) == 200
    big = b"x" * 5000  # over the 4096-byte limit of this server
    assert post(running.url + "/hook", big, {"X-Spindle-Signature-256": sign(SECRET, big)}) == 413
    assert post(running.url + "/elsewhere", BODY, {"X-Spindle-Signature-256": sign(SECRET, BODY)}) == 404
    assert get(running.url + "/nope")[0] == 404
    assert get(running.url + "/hook")[0] == 405  # it exists: POST only
    time.sleep(1.2)
    assert running.engine.runs == 1


@pytest.mark.parametrize("running", [1.0], indirect=True)
def test_readyz_turns_ready_after_the_first_successful_run(running: Running) -> None:
    assert get(running.url + "/readyz")[0] == 503  # the first run takes a second
    assert get(running.url + "/healthz") == (200, "ok\n")
    assert wait_for(lambda: get(running.url + "/readyz")[0] == 200, timeout=10)


@pytest.mark.parametrize("running", [0.8], indirect=True)
def test_pushes_during_a_run_queue_one_follow_up(running: Running) -> None:
    assert wait_for(lambda: running.engine.runs == 1)
    headers = {"X-Spindle-Signature-256": sign(SECRET, BODY)}
    for _ in range(4):
        assert post(running.url + "/hook", BODY, headers) == 202
    assert wait_for(lambda: len(running.engine.finished_at) == 2, timeout=10)
    time.sleep(1.2)
    assert running.engine.runs == 2
    assert running.engine.max_active == 1


def test_webhook_binds_loopback_by_default() -> None:
    assert parse_addr(":0")[0] == "127.0.0.1"
