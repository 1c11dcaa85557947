"""ttrpc framing on traffic captured from containerd 1.6.20, and the server and client over real sockets.

The captures and how they were made: data/containerd-1.6.20/README.md.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from shim.containerd import ttrpc
from shim.containerd.proto import events_task_pb2, events_ttrpc_pb2, shim_pb2, ttrpc_pb2

pytestmark = pytest.mark.timeout(60)

DATA = Path(__file__).parent / "data" / "containerd-1.6.20"
TASK = "containerd.task.v2.Task"
EVENTS = "containerd.services.events.ttrpc.v1.Events"
NS_KEY = "containerd-namespace-ttrpc"
CAPTURES = ["run-detached.hex", "run-foreground.hex", "reconnect.hex", "go-shim-forward.hex",
            "go-shim-forward-responses.hex"]


def captured_lines(name: str) -> list[bytes]:
    """The frames of a capture file, one per non-comment line."""
    lines = (DATA / name).read_text().splitlines()
    return [bytes.fromhex(line) for line in lines if line.strip() and not line.startswith("#")]


def captured_stream(name: str) -> bytes:
    return b"".join(captured_lines(name))


def captured_requests(name: str) -> list[tuple[ttrpc.Frame, ttrpc_pb2.Request]]:
    frames = ttrpc.decode_frames(captured_stream(name))
    return [(frame, ttrpc.decode_request(frame.payload)) for frame in frames]


# ------------------------------------------------------------------------------------ captured traffic

# file, frame index -> stream id, method, timeout in whole seconds (0: none), metadata
CAPTURED_CALLS = [
    ("run-detached.hex", 0, 1, "Create", 0, {}),
    ("run-detached.hex", 1, 3, "Connect", 0, {}),
    ("run-detached.hex", 2, 5, "Start", 0, {}),
    ("run-detached.hex", 3, 7, "State", 0, {}),
    ("run-detached.hex", 4, 9, "State", 2, {}),
    ("run-detached.hex", 6, 13, "Pids", 0, {}),
    ("run-detached.hex", 8, 17, "Kill", 0, {}),
    ("run-detached.hex", 11, 23, "Delete", 0, {}),
    ("run-detached.hex", 12, 25, "Shutdown", 3, {}),
    ("run-foreground.hex", 3, 7, "Connect", 0, {}),
    ("run-foreground.hex", 4, 9, "Wait", 0, {}),
    ("run-foreground.hex", 8, 17, "Shutdown", 3, {}),
    ("reconnect.hex", 0, 1, "Connect", 5, {NS_KEY: "capture"}),
    ("reconnect.hex", 3, 7, "Kill", 0, {}),
]


@pytest.mark.parametrize(("name", "index", "stream_id", "method", "timeout_s", "metadata"), CAPTURED_CALLS)
def test_captured_request_envelopes(
    name: str, index: int, stream_id: int, method: str, timeout_s: int, metadata: dict[str, str]
) -> None:
    frame, request = captured_requests(name)[index]
    assert (frame.stream_id, frame.type, frame.flags) == (stream_id, ttrpc.FrameType.REQUEST, 0)
    assert (request.service, request.method) == (TASK, method)
    # containerd sends what is left of its deadline: a little under the whole seconds
    assert timeout_s * 10**9 - 50_000_000 <= request.timeout_nano <= timeout_s * 10**9
    assert ttrpc.metadata_dict(request) == metadata


@pytest.mark.parametrize("name", ["run-detached.hex", "run-foreground.hex", "reconnect.hex"])
def test_captured_stream_ids_are_odd_and_rising(name: str) -> None:
    ids = [frame.stream_id for frame, _ in captured_requests(name)]
    assert ids == list(range(1, 2 * len(ids), 2))


def test_captured_create_request() -> None:
    _, request = captured_requests("run-detached.hex")[0]
    create = shim_pb2.CreateTaskRequest.FromString(request.payload)
    assert create.id == "cap1"
    assert create.bundle == "/tmp/ctrcap/state/io.containerd.runtime.v2.task/capture/cap1"
    [mount] = create.rootfs
    assert (mount.type, mount.source) == ("overlay", "overlay")
    assert mount.options[0] == "index=off"
    assert [option.split("=")[0] for option in mount.options[1:]] == ["workdir", "upperdir", "lowerdir"]
    assert create.stdout.endswith("/cap1-stdout") and create.stderr.endswith("/cap1-stderr")
    assert create.stdin.endswith("/cap1-stdin")
    assert not create.terminal and not create.HasField("options") and not create.checkpoint


def test_captured_task_requests() -> None:
    calls = {request.method: request.payload for _, request in captured_requests("run-detached.hex")}
    kill = shim_pb2.KillRequest.FromString(calls["Kill"])
    assert (kill.id, kill.exec_id, kill.signal, kill.all) == ("cap1", "", 15, False)
    shutdown = shim_pb2.ShutdownRequest.FromString(calls["Shutdown"])
    assert (shutdown.id, shutdown.now) == ("cap1", False)
    assert shim_pb2.DeleteRequest.FromString(calls["Delete"]).id == "cap1"
    assert shim_pb2.StateRequest.FromString(calls["State"]).id == "cap1"
    _, wait = captured_requests("run-foreground.hex")[4]
    assert shim_pb2.WaitRequest.FromString(wait.payload).id == "cap2"


def test_captured_go_shim_forward_requests() -> None:
    topics = []
    for frame, request in captured_requests("go-shim-forward.hex"):
        assert (request.service, request.method) == (EVENTS, "Forward")
        assert ttrpc.metadata_dict(request) == {NS_KEY: "capture"}
        assert 4_950_000_000 <= request.timeout_nano <= 5_000_000_000
        envelope = events_ttrpc_pb2.ForwardRequest.FromString(request.payload).envelope
        assert envelope.namespace == "capture"
        topics.append((frame.stream_id, envelope.topic, envelope.event.type_url))
        if envelope.topic == "/tasks/exit":
            exit_event = events_task_pb2.TaskExit.FromString(envelope.event.value)
            assert (exit_event.container_id, exit_event.id, exit_event.exit_status) == ("gorunc", "gorunc", 4)
    assert topics == [
        (1, "/tasks/create", "containerd.events.TaskCreate"),
        (3, "/tasks/start", "containerd.events.TaskStart"),
        (5, "/tasks/exit", "containerd.events.TaskExit"),
        (7, "/tasks/delete", "containerd.events.TaskDelete"),
    ]


def test_containerd_ok_answers_match_our_encoding() -> None:
    """A Go ttrpc server leaves the status out of an OK answer; encode_response() does the same."""
    for stream_id, line in zip((1, 3, 5, 7), captured_lines("go-shim-forward-responses.hex"), strict=True):
        assert ttrpc.encode_frame(stream_id, ttrpc.FrameType.RESPONSE, ttrpc.encode_response()) == line
        response = ttrpc.decode_response(ttrpc.decode_frames(line)[0].payload)
        assert response.status.code == ttrpc.Code.OK and response.payload == b""


@pytest.mark.parametrize("name", CAPTURES)
def test_captured_frames_reencode_byte_identical(name: str) -> None:
    lines = captured_lines(name)
    frames = ttrpc.decode_frames(b"".join(lines))
    assert [frame.encode() for frame in frames] == lines
    if name.endswith("responses.hex"):
        return
    for frame in frames:
        request = ttrpc.decode_request(frame.payload)
        metadata = [(pair.key, pair.value) for pair in request.metadata]
        rebuilt = ttrpc.encode_request(request.service, request.method, request.payload,
                                       request.timeout_nano, metadata)
        assert rebuilt == frame.payload


@pytest.mark.parametrize("name", CAPTURES)
def test_split_feeds_give_the_same_frames(name: str) -> None:
    stream = captured_stream(name)
    expected = ttrpc.decode_frames(stream)
    for cut in range(len(stream) + 1):
        decoder = ttrpc.FrameDecoder()
        assert decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) == expected
        assert decoder.buffered == 0
    decoder = ttrpc.FrameDecoder()
    one_by_one = [frame for i in range(len(stream)) for frame in decoder.feed(stream[i : i + 1])]
    decoder.end()
    assert one_by_one == expected


# ------------------------------------------------------------------------------------ bad input

HEADER = struct.Struct(">IIBB")


@pytest.mark.parametrize(
    ("data", "at_feed", "error"),
    [
        (HEADER.pack(ttrpc.MAX_PAYLOAD + 1, 1, 1, 0), True, "4194305 bytes, over the maximum of 4194304"),
        (b"\xff" * 10, True, "announces a payload of 4294967295 bytes"),
        (HEADER.pack(5, 1, 1, 0)[:4], False, "truncated header, 4 of 10 bytes"),
        (HEADER.pack(5, 1, 1, 0) + b"abc", False, "truncated payload, 3 of 5 bytes"),
    ],
    ids=["oversize", "garbage", "truncated-header", "truncated-payload"],
)
def test_bad_frames_give_a_clear_error(data: bytes, at_feed: bool, error: str) -> None:
    decoder = ttrpc.FrameDecoder()
    with pytest.raises(ttrpc.ProtocolError, match=error):
        decoder.feed(data)
        assert not at_feed, "an oversized length must be refused before its payload arrives"
        decoder.end()


def test_largest_payload_is_accepted() -> None:
    payload = b"x" * ttrpc.MAX_PAYLOAD
    [frame] = ttrpc.decode_frames(ttrpc.encode_frame(7, ttrpc.FrameType.RESPONSE, payload))
    assert (frame.stream_id, len(frame.payload)) == (7, ttrpc.MAX_PAYLOAD)
    with pytest.raises(ttrpc.ProtocolError, match="exceeds the maximum"):
        ttrpc.encode_frame(7, ttrpc.FrameType.RESPONSE, payload + b"x")


def test_undecodable_envelopes() -> None:
    with pytest.raises(ttrpc.ProtocolError, match="undecodable ttrpc request"):
        ttrpc.decode_request(b"\xff\xff\xff")
    with pytest.raises(ttrpc.ProtocolError, match="undecodable ttrpc response"):
        ttrpc.decode_response(b"\x0a\x05ab")


def test_error_code_unknown_to_the_enum() -> None:
    err = ttrpc.TtrpcError(99, "from the future")
    assert (err.code, err.message) == (ttrpc.Code.UNKNOWN, "from the future")
    assert str(err) == "UNKNOWN: from the future"


# ------------------------------------------------------------------------------------ server and client

ECHO = "test.v1.Echo"


class Fixture:
    """A Server on a unix socket in a short temporary directory, with test methods."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ttrpc-")  # short: unix socket paths end at 107 bytes
        self.path = f"{self.dir}/s.sock"
        self.release = threading.Event()
        self.blocked = threading.Event()
        self.server = ttrpc.Server(ttrpc.route({ECHO: {
            "Echo": lambda payload, md: payload,
            "Block": self._block,
            "Fail": self._fail,
            "Crash": self._crash,
            "Meta": lambda payload, md: json.dumps(dict(md), sort_keys=True).encode(),
            "Big": lambda payload, md: b"x" * ttrpc.MAX_PAYLOAD,
            "Shutdown": self._shutdown,
        }}))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen()
        self.thread = threading.Thread(target=self.server.serve, args=(listener,), daemon=True)
        self.thread.start()

    def _block(self, payload: bytes, metadata: Mapping[str, str]) -> bytes:
        self.blocked.set()
        self.release.wait(20)
        return b"unblocked"

    def _fail(self, payload: bytes, metadata: Mapping[str, str]) -> bytes:
        raise ttrpc.TtrpcError(ttrpc.Code.NOT_FOUND, f"task {payload.decode()} not found")

    def _crash(self, payload: bytes, metadata: Mapping[str, str]) -> bytes:
        raise RuntimeError("boom")

    def _shutdown(self, payload: bytes, metadata: Mapping[str, str]) -> bytes:
        self.server.close(grace=2.0)
        return b"bye"

    def raw(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(self.path)
        return sock

    def stop(self) -> None:
        self.release.set()
        self.server.close(grace=0)
        assert self.server.wait_closed(5)
        self.thread.join(5)
        shutil.rmtree(self.dir)


@pytest.fixture
def fx() -> Iterator[Fixture]:
    fixture = Fixture()
    yield fixture
    fixture.stop()


def read_frames(sock: socket.socket, count: int) -> list[ttrpc.Frame]:
    """The next ``count`` frames from a raw socket; fewer if the peer closes it first."""
    decoder = ttrpc.FrameDecoder()
    frames: list[ttrpc.Frame] = []
    while len(frames) < count and (data := sock.recv(65536)):
        frames += decoder.feed(data)
    return frames


def test_call_round_trip(fx: Fixture) -> None:
    with ttrpc.Client.connect(fx.path, timeout=5) as client:
        assert client.call(ECHO, "Echo", b"hello", timeout=5) == b"hello"
        assert client.call(ECHO, "Echo", b"") == b""
        answer = client.call(ECHO, "Meta", b"", metadata={NS_KEY: "k8s.io"})
        assert json.loads(answer) == {NS_KEY: "k8s.io"}


def test_unix_url_address(fx: Fixture) -> None:
    with ttrpc.Client.connect("unix://" + fx.path, timeout=5) as client:
        assert client.call(ECHO, "Echo", b"url") == b"url"


def test_a_blocking_call_does_not_hold_up_a_fast_one(fx: Fixture) -> None:
    with ttrpc.Client.connect(fx.path, timeout=5) as client:
        results: list[bytes] = []
        waiter = threading.Thread(target=lambda: results.append(client.call(ECHO, "Block", b"")))
        waiter.start()
        assert fx.blocked.wait(5)
        # same connection, while Block still runs (as State runs while containerd's Wait blocks)
        assert [client.call(ECHO, "Echo", b"%d" % i, timeout=5) for i in range(3)] == [b"0", b"1", b"2"]
        assert waiter.is_alive() and not results
        fx.release.set()
        waiter.join(5)
        assert results == [b"unblocked"]


def test_calls_from_many_threads(fx: Fixture) -> None:
    with ttrpc.Client.connect(fx.path, timeout=5) as client:
        answers: dict[int, bytes] = {}

        def worker(n: int) -> None:
            for i in range(20):
                answers[n * 100 + i] = client.call(ECHO, "Echo", b"%d" % (n * 100 + i), timeout=10)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert answers == {key: b"%d" % key for key in answers} and len(answers) == 160


def test_error_statuses_round_trip(fx: Fixture, caplog: pytest.LogCaptureFixture) -> None:
    with ttrpc.Client.connect(fx.path, timeout=5) as client:
        with pytest.raises(ttrpc.TtrpcError) as failed:
            client.call(ECHO, "Fail", b"app1")
        assert (failed.value.code, failed.value.message) == (ttrpc.Code.NOT_FOUND, "task app1 not found")
        caplog.set_level(logging.ERROR, logger="shim.containerd.ttrpc")
        with pytest.raises(ttrpc.TtrpcError) as crashed:
            client.call(ECHO, "Crash", b"")
        assert (crashed.value.code, crashed.value.message) == (ttrpc.Code.UNKNOWN, "boom")
        assert "test.v1.Echo/Crash failed" in caplog.text and "RuntimeError: boom" in caplog.text
        with pytest.raises(ttrpc.TtrpcError) as too_big:
            client.call(ECHO, "Big", b"")
        assert too_big.value.code == ttrpc.Code.RESOURCE_EXHAUSTED
        assert client.call(ECHO, "Echo", b"still fine") == b"still fine"


def test_unknown_service_or_method_is_unimplemented(fx: Fixture) -> None:
    with ttrpc.Client.connect(fx.path, timeout=5) as client:
        with pytest.raises(ttrpc.TtrpcError) as method:
            client.call(ECHO, "Nope", b"")
        assert (method.value.code, method.value.message) == (ttrpc.Code.UNIMPLEMENTED, "method Nope")
        with pytest.raises(ttrpc.TtrpcError) as service:
            client.call(TASK, "State", b"")
        assert (service.value.code, service.value.message) == (ttrpc.Code.UNIMPLEMENTED, f"service {TASK}")


def test_a_garbage_frame_closes_only_that_connection(fx: Fixture) -> None:
    with ttrpc.Client.connect(fx.path, timeout=5) as client:
        assert client.call(ECHO, "Echo", b"before") == b"before"
        with fx.raw() as bad:
            bad.sendall(b"GET / HTTP/1.1\r\n\r\n")  # reads as a 1.1 GB length
            assert read_frames(bad, 1) == []  # the server hung up
        assert client.call(ECHO, "Echo", b"after", timeout=5) == b"after"
    with ttrpc.Client.connect(fx.path, timeout=5) as fresh:
        assert fresh.call(ECHO, "Echo", b"new", timeout=5) == b"new"


def test_a_bad_request_fails_only_that_request(fx: Fixture) -> None:
    with fx.raw() as sock:
        echo_x, echo_ok = ttrpc.encode_request(ECHO, "Echo", b"x"), ttrpc.encode_request(ECHO, "Echo", b"ok")
        sock.sendall(ttrpc.encode_frame(1, ttrpc.FrameType.REQUEST, b"\xff\xff"))
        sock.sendall(ttrpc.encode_frame(2, ttrpc.FrameType.REQUEST, echo_x))
        sock.sendall(ttrpc.encode_frame(9, ttrpc.FrameType.DATA, b"ignored"))
        sock.sendall(ttrpc.encode_frame(3, ttrpc.FrameType.REQUEST, echo_ok))
        frames = read_frames(sock, 3)
        assert {frame.type for frame in frames} == {ttrpc.FrameType.RESPONSE}
        answers = {frame.stream_id: ttrpc.decode_response(frame.payload) for frame in frames}
        assert answers[1].status.code == ttrpc.Code.INVALID_ARGUMENT
        assert "undecodable ttrpc request" in answers[1].status.message
        assert answers[2].status.code == ttrpc.Code.INVALID_ARGUMENT
        assert answers[2].status.message == "StreamID must be odd for client initiated streams"
        assert (answers[3].status.code, answers[3].payload) == (ttrpc.Code.OK, b"ok")


class RecordingServer:
    """A raw listener that records each request and answers it only when told to."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen()
        self.requests: list[tuple[int, ttrpc_pb2.Request]] = []
        self.answer = True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            decoder = ttrpc.FrameDecoder()
            while data := conn.recv(65536):
                for frame in decoder.feed(data):
                    self.requests.append((frame.stream_id, ttrpc.decode_request(frame.payload)))
                    if self.answer:
                        conn.sendall(ttrpc.encode_frame(frame.stream_id, ttrpc.FrameType.RESPONSE,
                                                        ttrpc.encode_response(b"ok")))


def test_client_stream_ids_timeouts_and_metadata() -> None:
    with tempfile.TemporaryDirectory(prefix="ttrpc-") as tmp:
        server = RecordingServer(f"{tmp}/s.sock")
        with ttrpc.Client.connect(f"{tmp}/s.sock", timeout=5) as client:
            assert client.call(TASK, "State", b"a") == b"ok"
            assert client.call(TASK, "Connect", b"b", timeout=5, metadata={NS_KEY: "default"}) == b"ok"
            server.answer = False
            started = time.monotonic()
            with pytest.raises(TimeoutError, match=r"Task/Wait: no answer within 0\.2 s"):
                client.call(TASK, "Wait", b"c", timeout=0.2)
            assert time.monotonic() - started < 2
        server.listener.close()
    assert [stream_id for stream_id, _ in server.requests] == [1, 3, 5]
    state, connect, wait = (request for _, request in server.requests)
    assert (state.method, state.payload, state.timeout_nano, list(state.metadata)) == ("State", b"a", 0, [])
    assert connect.timeout_nano == 5_000_000_000
    assert ttrpc.metadata_dict(connect) == {NS_KEY: "default"}
    assert wait.timeout_nano == 200_000_000


def test_shutdown_answers_then_the_server_closes(fx: Fixture) -> None:
    client = ttrpc.Client.connect(fx.path, timeout=5)
    assert client.call(ECHO, "Shutdown", b"", timeout=5) == b"bye"
    assert fx.server.wait_closed(5)
    with pytest.raises(ConnectionError):
        client.call(ECHO, "Echo", b"", timeout=5)
    client.close()
    with pytest.raises(OSError):
        ttrpc.Client.connect(fx.path, timeout=1)


def test_close_drops_requests_still_running_after_the_grace(fx: Fixture) -> None:
    client = ttrpc.Client.connect(fx.path, timeout=5)
    errors: list[Exception] = []

    def blocked_call() -> None:
        try:
            client.call(ECHO, "Block", b"")
        except Exception as err:
            errors.append(err)

    waiter = threading.Thread(target=blocked_call)
    waiter.start()
    assert fx.blocked.wait(5)
    started = time.monotonic()
    fx.server.close(grace=0.3)
    assert fx.server.wait_closed(5)
    assert 0.25 < time.monotonic() - started < 3
    waiter.join(5)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionError)
    client.close()


def test_abstract_socket_address() -> None:
    name = f"spindle-ttrpc-test-{time.monotonic_ns()}"
    server = ttrpc.Server(lambda service, method, payload, metadata: payload[::-1])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + name)
    listener.listen()
    thread = threading.Thread(target=server.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        with ttrpc.Client.connect("unix://@" + name, timeout=5) as client:
            assert client.call("any", "thing", b"abc") == b"cba"
    finally:
        server.close()
        assert server.wait_closed(5)
