"""ttrpc, the RPC protocol between containerd and its runtime shims, on the ``protobuf`` package.

Why it is written here: PyPI has no maintained Python ttrpc implementation. ``pip index versions``
finds no ``ttrpc`` or ``pyttrpc`` distribution, and the ``containerd`` distribution (1.5.3, 2021) is
gRPC stubs for containerd's client API only, with neither the ttrpc transport nor the
``runtime/v2`` shim protos. The protocol is small (framing from ttrpc 1.1.1's ``channel.go``, the
envelopes from its ``types.go``), so this module implements it directly.

The wire format, as containerd 1.6 speaks it:

* no handshake: each message is a 10-byte big-endian header, ``uint32 length`` (of the payload
  only, at most 4 MiB), ``uint32 stream_id``, ``uint8 type`` (1 request, 2 response; ttrpc >= 1.2
  adds 3, data, for streams), ``uint8 flags``; then the payload;
* a request frame carries a ``ttrpc.Request`` (service, method, payload, timeout_nano, metadata),
  a response frame a ``ttrpc.Response`` (a ``google.rpc.Status`` and the payload); the payloads
  are the serialized request and response messages of the method;
* clients use odd stream ids (1, 3, 5, ...) and the server answers on the same id; requests on one
  connection are concurrent and may be answered out of order (containerd's ``Wait`` blocks for
  the task's whole life while ``State`` and ``Kill`` go on over the same connection).

Errors::

    TtrpcError         a non-OK status: a handler raises it to answer with an error status,
                       Client.call raises it when the server answered with one
    ProtocolError      bytes that are not ttrpc (an oversized or truncated frame, an
                       undecodable envelope); the connection they came on is closed
    OSError            transport trouble on the client side: ConnectionError when the
                       connection is closed or lost, TimeoutError when no answer came in time
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from shim.containerd.proto import status_pb2, ttrpc_pb2

__all__ = [
    "HEADER_SIZE",
    "MAX_PAYLOAD",
    "Client",
    "Code",
    "Frame",
    "FrameDecoder",
    "FrameType",
    "Handler",
    "Method",
    "ProtocolError",
    "Server",
    "TtrpcError",
    "decode_frames",
    "decode_request",
    "decode_response",
    "encode_frame",
    "encode_request",
    "encode_response",
    "metadata_dict",
    "route",
]

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">IIBB")
HEADER_SIZE = _HEADER.size
MAX_PAYLOAD = 4 << 20  # ttrpc's messageLengthMax; both sides refuse larger payloads
_MAX_STREAM_ID = 0xFFFFFFFF
_RECV_SIZE = 64 << 10


class FrameType(enum.IntEnum):
    REQUEST = 1
    RESPONSE = 2
    DATA = 3  # ttrpc >= 1.2 streaming; containerd 1.6 (ttrpc 1.1.1) never sends it


class Code(enum.IntEnum):
    """The gRPC status codes, which ttrpc reuses; containerd's errdefs maps them to its errors."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class TtrpcError(Exception):
    """A non-OK ttrpc status: what a handler raises to answer one, and what Client.call raises."""

    def __init__(self, code: Code | int, message: str) -> None:
        try:
            self.code = Code(code)
        except ValueError:  # a code this enum does not know (a newer peer) still reads as an error
            self.code = Code.UNKNOWN
        self.message = message
        super().__init__(code, message)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class ProtocolError(ValueError):
    """Bytes that break the ttrpc protocol; the connection carrying them cannot be trusted further."""


# ---------------------------------------------------------------------------------------------- framing


@dataclass(frozen=True, slots=True)
class Frame:
    stream_id: int
    type: int  # a FrameType value; kept as a plain int so unknown types from newer peers survive
    flags: int
    payload: bytes

    def encode(self) -> bytes:
        return encode_frame(self.stream_id, self.type, self.payload, self.flags)


def encode_frame(stream_id: int, frame_type: int, payload: bytes, flags: int = 0) -> bytes:
    """The header and the payload of one frame, ready to send."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"ttrpc payload of {len(payload)} bytes exceeds the maximum of {MAX_PAYLOAD}")
    return _HEADER.pack(len(payload), stream_id, frame_type, flags) + payload


class FrameDecoder:
    """Turns a byte stream into frames, whatever the chunking; does no I/O.

    ``feed`` returns the frames the bytes so far complete; ``end`` says the stream ended and raises
    if it stopped inside a frame. An oversized length raises at once, before its payload arrives:
    a reader must not buffer 4 GiB because a header says so.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._max_payload = max_payload
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received that do not complete a frame yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while (frame := self._next_frame()) is not None:
            frames.append(frame)
        return frames

    def end(self) -> None:
        if self._buffer:
            raise ProtocolError(f"ttrpc stream ended inside a frame: {self._describe_partial()}")

    def _next_frame(self) -> Frame | None:
        if len(self._buffer) < HEADER_SIZE:
            return None
        length, stream_id, frame_type, flags = _HEADER.unpack_from(self._buffer)
        if length > self._max_payload:
            raise ProtocolError(
                f"ttrpc frame on stream {stream_id} announces a payload of {length} bytes, "
                f"over the maximum of {self._max_payload}"
            )
        end = HEADER_SIZE + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[HEADER_SIZE:end])
        del self._buffer[:end]
        return Frame(stream_id, frame_type, flags, payload)

    def _describe_partial(self) -> str:
        if len(self._buffer) < HEADER_SIZE:
            return f"truncated header, {len(self._buffer)} of {HEADER_SIZE} bytes"
        length = _HEADER.unpack_from(self._buffer)[0]
        return f"truncated payload, {len(self._buffer) - HEADER_SIZE} of {length} bytes"


def decode_frames(data: bytes) -> list[Frame]:
    """All the frames of a complete byte string (a capture, a test vector)."""
    decoder = FrameDecoder()
    frames = decoder.feed(data)
    decoder.end()
    return frames


# ---------------------------------------------------------------------------------------------- envelopes


def encode_request(
    service: str,
    method: str,
    payload: bytes,
    timeout_nano: int = 0,
    metadata: Iterable[tuple[str, str]] = (),
) -> bytes:
    request = ttrpc_pb2.Request(service=service, method=method, payload=payload, timeout_nano=timeout_nano)
    request.metadata.extend(ttrpc_pb2.KeyValue(key=key, value=value) for key, value in metadata)
    return request.SerializeToString()


def decode_request(data: bytes) -> ttrpc_pb2.Request:
    try:
        return ttrpc_pb2.Request.FromString(data)
    except DecodeError as err:
        raise ProtocolError(f"undecodable ttrpc request: {err}") from err


def encode_response(payload: bytes = b"", code: Code = Code.OK, message: str = "") -> bytes:
    response = ttrpc_pb2.Response(payload=payload)
    if code != Code.OK or message:
        # Go's ttrpc leaves the status out of an OK answer (a nil *Status); doing the same keeps
        # the frames byte-identical to what containerd and Go shims send.
        response.status.CopyFrom(status_pb2.Status(code=int(code), message=message))
    return response.SerializeToString()


def decode_response(data: bytes) -> ttrpc_pb2.Response:
    try:
        return ttrpc_pb2.Response.FromString(data)
    except DecodeError as err:
        raise ProtocolError(f"undecodable ttrpc response: {err}") from err


def metadata_dict(request: ttrpc_pb2.Request) -> dict[str, str]:
    """Request metadata as a dict; for a repeated key the first value wins, as ttrpc's
    GetMetadataValue does (containerd sends each key once)."""
    result: dict[str, str] = {}
    for pair in request.metadata:
        result.setdefault(pair.key, pair.value)
    return result


# ---------------------------------------------------------------------------------------------- server

Handler = Callable[[str, str, bytes, Mapping[str, str]], bytes]
"""handler(service, method, request payload, metadata) -> response payload; raises TtrpcError."""

Method = Callable[[bytes, Mapping[str, str]], bytes]
"""One method of a route() table: method(request payload, metadata) -> response payload."""


def route(services: Mapping[str, Mapping[str, Method]]) -> Handler:
    """A Handler dispatching to ``services[service][method]``.

    Anything else answers UNIMPLEMENTED with the texts Go's ttrpc uses ("service X", "method Y").
    """

    def handler(service: str, method: str, payload: bytes, metadata: Mapping[str, str]) -> bytes:
        methods = services.get(service)
        if methods is None:
            raise TtrpcError(Code.UNIMPLEMENTED, f"service {service}")
        function = methods.get(method)
        if function is None:
            raise TtrpcError(Code.UNIMPLEMENTED, f"method {method}")
        return function(payload, metadata)

    return handler


class Server:
    """A threaded ttrpc server: a reader thread per connection and a thread per request.

    ``serve(listener)`` blocks until ``close()``. Closing stops accepting connections and requests
    at once; the requests already running get ``grace`` seconds to finish and send their answer
    (so a handler may itself call ``close()``, as the shim's Shutdown does, and its own response
    still goes out), then every connection is closed and ``serve`` returns.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self._connections: set[_ServerConnection] = set()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._grace = 0.0
        self._wakeup: socket.socket | None = None  # close() writes to it to end serve()'s select

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def serve(self, listener: socket.socket) -> None:
        """Accept connections on ``listener`` until close(); takes ownership of it and closes it."""
        wakeup_r, wakeup_w = socket.socketpair()
        try:
            with self._lock:
                self._wakeup = wakeup_w
            listener.setblocking(False)  # select() said readable, yet a client may give up first
            with selectors.DefaultSelector() as selector, listener:
                selector.register(listener, selectors.EVENT_READ)
                selector.register(wakeup_r, selectors.EVENT_READ)
                while not self._closing.is_set():
                    for key, _ in selector.select():
                        if key.fileobj is listener and not self._closing.is_set():
                            self._accept(listener)
            self._drain()
        finally:
            self._shut_connections()
            with self._lock:
                self._wakeup = None
            wakeup_r.close()
            wakeup_w.close()
            self._closed.set()

    def close(self, grace: float = 1.0) -> None:
        """Stop serving; returns at once (serve() does the draining). Safe from any thread."""
        with self._lock:
            if self._closing.is_set():
                return
            self._grace = grace
            self._closing.set()
            if self._wakeup is not None:
                with contextlib.suppress(OSError):
                    self._wakeup.send(b"\0")

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until serve() has closed everything and returned; False on timeout."""
        return self._closed.wait(timeout)

    # -- internals, used by the connections

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return  # the client gave up between select() and accept()
        sock.setblocking(True)  # the reader thread blocks in recv(); do not inherit the listener's mode
        connection = _ServerConnection(self, sock)
        with self._lock:
            self._connections.add(connection)
        connection.start()

    def _drain(self) -> None:
        deadline = time.monotonic() + self._grace
        with self._idle:
            while self._in_flight and (remaining := deadline - time.monotonic()) > 0:
                self._idle.wait(remaining)
            if self._in_flight:
                log.info("ttrpc server closing with %d requests still running", self._in_flight)

    def _shut_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.shut()

    def _forget(self, connection: _ServerConnection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _begin_request(self) -> bool:
        with self._lock:
            if self._closing.is_set():
                return False
            self._in_flight += 1
            return True

    def _end_request(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _call(self, request: ttrpc_pb2.Request) -> bytes:
        """Run the handler; always returns an encoded Response, never raises."""
        try:
            payload = self._handler(request.service, request.method, request.payload, metadata_dict(request))
        except TtrpcError as err:
            return encode_response(code=err.code, message=err.message)
        except Exception as err:
            log.exception("ttrpc handler for %s/%s failed", request.service, request.method)
            return encode_response(code=Code.UNKNOWN, message=str(err) or type(err).__name__)
        response = encode_response(payload)
        if len(response) > MAX_PAYLOAD:
            message = f"response of {len(payload)} bytes exceeds the ttrpc maximum of {MAX_PAYLOAD}"
            return encode_response(code=Code.RESOURCE_EXHAUSTED, message=message)
        return response


class _ServerConnection:
    """One accepted connection: its reader thread dispatches each request to a thread of its own."""

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self._server = server
        self._sock = sock
        # Responses from concurrent request threads must not interleave on the stream.
        self._write_lock = threading.Lock()
        # Guards _closed and the close itself. The reader closes the socket holding both locks, so
        # no write and no shutdown() can reach a reused file descriptor; shut() takes only this one,
        # so it can unblock a writer stuck in sendall() to a peer that stopped reading.
        self._state_lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        threading.Thread(target=self._read_loop, name="ttrpc-conn", daemon=True).start()

    def shut(self) -> None:
        """Wake the reader (it sees end-of-stream and closes the socket)."""
        with self._state_lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)

    def _read_loop(self) -> None:
        decoder = FrameDecoder()
        try:
            while data := self._sock.recv(_RECV_SIZE):
                for frame in decoder.feed(data):
                    self._on_frame(frame)
            decoder.end()
        except ProtocolError as err:
            log.warning("ttrpc: closing a connection that sent a malformed frame: %s", err)
        except OSError as err:
            log.debug("ttrpc: connection error: %s", err)
        finally:
            with self._write_lock, self._state_lock:
                self._closed = True
                self._sock.close()
            self._server._forget(self)

    def _on_frame(self, frame: Frame) -> None:
        if frame.type != FrameType.REQUEST:
            # ttrpc ignores other types for forward compatibility (stream data from newer clients).
            log.debug("ttrpc: ignoring a frame of type %d on stream %d", frame.type, frame.stream_id)
            return
        if frame.stream_id % 2 == 0:  # Go's ttrpc refuses even ids the same way
            message = "StreamID must be odd for client initiated streams"
            self._send(frame.stream_id, encode_response(code=Code.INVALID_ARGUMENT, message=message))
            return
        try:
            request = decode_request(frame.payload)
        except ProtocolError as err:
            # The framing is intact, so only this request fails, as in Go's ttrpc.
            self._send(frame.stream_id, encode_response(code=Code.INVALID_ARGUMENT, message=str(err)))
            return
        if not self._server._begin_request():
            closed = encode_response(code=Code.UNAVAILABLE, message="ttrpc: server closed")
            self._send(frame.stream_id, closed)
            return
        name = f"ttrpc-{request.method}-{frame.stream_id}"
        threading.Thread(target=self._run, args=(frame.stream_id, request), name=name, daemon=True).start()

    def _run(self, stream_id: int, request: ttrpc_pb2.Request) -> None:
        try:
            self._send(stream_id, self._server._call(request))
        finally:
            self._server._end_request()

    def _send(self, stream_id: int, response: bytes) -> None:
        frame = encode_frame(stream_id, FrameType.RESPONSE, response)
        with self._write_lock:
            if self._closed:
                log.debug("ttrpc: dropping the response on stream %d: connection closed", stream_id)
                return
            try:
                self._sock.sendall(frame)
            except OSError as err:
                log.debug("ttrpc: cannot send the response on stream %d: %s", stream_id, err)


# ---------------------------------------------------------------------------------------------- client


class _Pending:
    __slots__ = ("done", "error", "response")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: ttrpc_pb2.Response | None = None
        self.error: OSError | None = None


class Client:
    """A blocking ttrpc client over one connection; call() may be used from many threads at once."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()  # stream ids, the pending table, closing
        self._write_lock = threading.Lock()  # whole frames on the stream; the socket closes under it
        self._pending: dict[int, _Pending] = {}
        self._stream_ids = itertools.count(1, 2)
        self._closed_reason: str | None = None
        self._reader = threading.Thread(target=self._read_loop, name="ttrpc-client", daemon=True)
        self._reader.start()

    @classmethod
    def connect(cls, address: str, timeout: float | None = None) -> Client:
        """Connect to ``unix:///abs/path.sock``, ``/abs/path.sock`` or ``@abstract-name``.

        Unlike Go's shim dialer, an address without ``unix://`` is a filesystem path here.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(_socket_path(address))
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def call(
        self,
        service: str,
        method: str,
        payload: bytes,
        timeout: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bytes:
        """Send one request and wait for its answer; the timeout also goes to the server."""
        timeout_nano = 0 if timeout is None else max(1, int(timeout * 1e9))
        request = encode_request(service, method, payload, timeout_nano, (metadata or {}).items())
        pending = _Pending()
        stream_id = self._send(request, pending)
        if not pending.done.wait(timeout):
            with self._lock:
                self._pending.pop(stream_id, None)
            raise TimeoutError(f"ttrpc {service}/{method}: no answer within {timeout} s")
        if pending.error is not None:
            raise pending.error
        assert pending.response is not None
        status = pending.response.status
        if status.code != Code.OK:
            raise TtrpcError(status.code, status.message)
        return pending.response.payload

    def close(self) -> None:
        with self._lock:
            if self._closed_reason is None:
                self._closed_reason = "ttrpc client closed"
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        if threading.current_thread() is not self._reader:
            self._reader.join()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, request: bytes, pending: _Pending) -> int:
        with self._lock:
            if self._closed_reason is not None:
                raise ConnectionError(self._closed_reason)
            stream_id = next(self._stream_ids)
            if stream_id > _MAX_STREAM_ID:
                raise ConnectionError("ttrpc stream ids exhausted on this connection; reconnect")
            self._pending[stream_id] = pending
        try:
            frame = encode_frame(stream_id, FrameType.REQUEST, request)
            with self._write_lock:
                self._sock.sendall(frame)
        except (OSError, ProtocolError) as err:
            with self._lock:
                self._pending.pop(stream_id, None)
                reason = self._closed_reason
            if reason is not None and isinstance(err, OSError):
                raise ConnectionError(reason) from err  # the reader closed the socket under us
            raise
        return stream_id

    def _read_loop(self) -> None:
        decoder = FrameDecoder()
        reason = "ttrpc connection closed by the server"
        try:
            while data := self._sock.recv(_RECV_SIZE):
                for frame in decoder.feed(data):
                    self._on_frame(frame)
            decoder.end()
        except (ProtocolError, OSError) as err:
            reason = f"ttrpc connection lost: {err}"
        self._fail_all(reason)

    def _on_frame(self, frame: Frame) -> None:
        if frame.type != FrameType.RESPONSE:
            return
        response = decode_response(frame.payload)
        with self._lock:
            pending = self._pending.pop(frame.stream_id, None)
        if pending is None:
            log.debug("ttrpc: dropping an answer on stream %d: nobody waits for it", frame.stream_id)
            return
        pending.response = response
        pending.done.set()

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            if self._closed_reason is None:
                self._closed_reason = reason
            pending, self._pending = self._pending, {}
        with self._write_lock, self._lock:
            self._sock.close()
        for waiter in pending.values():
            waiter.error = ConnectionError(self._closed_reason)
            waiter.done.set()


def _socket_path(address: str) -> str:
    path = address.removeprefix("unix://")
    return "\0" + path[1:] if path.startswith("@") else path
