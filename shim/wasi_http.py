"""Python implementations of wasi:io, wasi:http/types (server side and outgoing), and the WASI
interfaces that hand out io resources (cli stdio, monotonic clock, filesystem).

All state lives in the `RequestState` of the request being served (see `hostlink.current`):
a table from resource rep to Python object, the request being read, and the response sink.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shim import hostlink
from shim.codec import Err, Ok, V
from shim.errors import ClientError, ClientGone

Reader = Callable[[int], bytes]  # returns b"" at end of stream


class ResponseSink(Protocol):
    def start(self, status: int, headers: list[tuple[str, bytes]]) -> None: ...
    def write(self, data: bytes) -> None: ...  # may buffer
    def flush(self) -> None: ...  # send what is buffered: the guest is about to wait
    def finish(self) -> None: ...


@dataclass
class InboundRequest:
    method: str
    path_with_query: str
    scheme: str
    authority: str
    headers: list[tuple[str, bytes]]
    body: Reader  # may raise ClientError (the client went away, or broke the body's framing)
    deadline: float | None = None  # time.monotonic() of the request deadline: host waits end there


class Fields:
    __slots__ = ("entries", "immutable")

    def __init__(self, entries: list[tuple[str, bytes]], immutable: bool = False) -> None:
        self.entries = entries
        self.immutable = immutable


class InStream:
    __slots__ = ("closed", "read")

    def __init__(self, read: Reader) -> None:
        self.read = read
        self.closed = False


class OutStream:
    __slots__ = ("write",)

    def __init__(self, write: Callable[[bytes], bool | None]) -> None:
        self.write = write  # False: the stream's reader went away


class Pollable:
    __slots__ = ("deadline",)

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline  # time.monotonic() value; None means always ready

    def ready(self) -> bool:
        return self.deadline is None or time.monotonic() >= self.deadline


@dataclass
class OutgoingResponse:
    headers: Fields
    status: int = 200
    body_taken: bool = False


@dataclass
class OutgoingRequest:
    headers: Fields
    method: Any = "get"
    path_with_query: str | None = None
    scheme: Any = None
    authority: str | None = None
    body: bytearray = field(default_factory=bytearray)
    body_taken: bool = False


@dataclass
class OutgoingBody:
    write: Callable[[bytes], bool | None]
    on_finish: Callable[[], None]
    stream_taken: bool = False


@dataclass
class IncomingBody:
    read: Reader
    stream_taken: bool = False


@dataclass
class IncomingResponse:
    status: int
    headers: list[tuple[str, bytes]]
    body: Reader


@dataclass
class FutureResponse:
    result: Any  # Ok(rep of IncomingResponse) or Err(error-code)
    taken: bool = False


class IoError:
    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


# -> Ok(IncomingResponse) | Ok(Err(code)) (failed on the way) | Err(code) (refused by `handle`)
Outbound = Callable[["RequestState", OutgoingRequest], Any]
LogLine = Callable[[str, bytes], None]  # (stream name, data)


class RequestState:
    """Everything one request's host calls touch."""

    def __init__(self, request: InboundRequest, sink: ResponseSink,
                 log: LogLine, outbound: Outbound | None = None) -> None:
        self.objs: dict[int, Any] = {}
        self.next = 1
        self.request = request
        self.sink = sink
        self.log = log
        self.outbound = outbound
        self.response_set = False
        self.pending: bytearray | None = bytearray()  # body written before outparam.set
        self.finished = False
        self.request_ended = False
        self.client_gone = False  # the client went away: writes answer `closed`, nothing is logged as a trap
        self.guest_error: str | None = None
        self.extra: dict[str, Any] = {}  # for other host APIs (key-value stores, ...)

    def new(self, kind: str, obj: Any) -> int:
        """Store `obj` (a `kind` of resource, named for readers) and return its rep."""
        rep = self.next
        self.next += 1
        self.objs[rep] = obj
        return rep

    def get(self, rep: int) -> Any:
        return self.objs[rep]

    def take(self, rep: int) -> Any:
        return self.objs.pop(rep)

    def drop(self, rep: int) -> None:
        self.objs.pop(rep, None)

    def sink_call(self, fn: Callable[..., None], *args: Any) -> bool:
        """Call the sink; False (and `client_gone`) once the client has gone away."""
        if self.client_gone:
            return False
        try:
            fn(*args)
        except ClientGone:
            self.client_gone = True
            return False
        return True

    # response body path
    def body_write(self, data: bytes) -> bool:
        if self.pending is not None:
            self.pending += data
            return True
        return self.sink_call(self.sink.write, data)

    def set_response(self, status: int, headers: list[tuple[str, bytes]]) -> None:
        self.response_set = True
        self.sink_call(self.sink.start, status, headers)
        pending, self.pending = self.pending, None
        if pending:
            self.sink_call(self.sink.write, bytes(pending))

    def flush_response(self) -> None:
        """Called before the host blocks on the guest's behalf (reading the request body, sleeping
        in poll, calling out): a response streamed in pieces reaches the client as it is written,
        while one written in one go still leaves in one segment."""
        if self.pending is None and not self.finished:
            self.sink_call(self.sink.flush)

    def read_request(self, n: int) -> bytes:
        if self.request_ended:  # nothing left to wait for: no reason to flush
            return b""
        self.flush_response()
        data = self.request.body(n)
        self.request_ended = bool(n) and not data
        return data

    def finish_body(self) -> None:
        if not self.finished:
            self.finished = True
            if self.pending is not None:  # finished before outparam.set: keep for set_response
                return
            self.sink_call(self.sink.finish)

    def sleep_until(self, when: float) -> None:
        """Sleep for the guest until `when` (monotonic), but not past the request deadline."""
        deadline = self.request.deadline
        if deadline is not None and when > deadline:
            time.sleep(max(0.0, deadline - time.monotonic()))
            raise TimeoutError("request timed out: the deadline passed while the guest waited")
        time.sleep(max(0.0, when - time.monotonic()))


def st() -> RequestState:
    s: RequestState = hostlink.current()
    return s


IMPLS: hostlink.Implementations = {}


def impl(*names: str) -> Callable[[hostlink.HostFn], hostlink.HostFn]:
    def deco(f: hostlink.HostFn) -> hostlink.HostFn:
        for n in names:
            IMPLS[n] = f
        return f
    return deco


# ---------------------------------------------------------------- wasi:io

IO_S = "wasi:io/streams#"
MAX_READ = 64 * 1024


@impl("wasi:io/error#[method]error.to-debug-string")
def _err_debug(e: int) -> str:
    obj = st().get(e)
    return obj.message if isinstance(obj, IoError) else str(obj)


@impl("wasi:io/poll#[method]pollable.ready")
def _poll_ready(p: int) -> bool:
    ready: bool = st().get(p).ready()
    return ready


@impl("wasi:io/poll#[method]pollable.block")
def _poll_block(p: int) -> None:
    s = st()
    pol: Pollable = s.get(p)
    if not pol.ready():
        s.flush_response()
    if pol.deadline is not None:
        s.sleep_until(pol.deadline)


@impl("wasi:io/poll#poll")
def _poll(ps: list[int]) -> list[int]:
    s = st()
    pols: list[Pollable] = [s.get(p) for p in ps]
    if not pols:
        return []
    while True:
        ready = [i for i, p in enumerate(pols) if p.ready()]
        if ready:
            return ready
        s.flush_response()
        s.sleep_until(min(p.deadline for p in pols if p.deadline is not None))


def _subscribe_ready(_r: int) -> int:
    return st().new("pollable", Pollable())


def _read(stream: int, n: int) -> Any:
    s: InStream = st().get(stream)
    if s.closed:
        return Err(V("closed"))
    try:
        data = s.read(min(n, MAX_READ)) if n else b""
    except ClientError as exc:  # the guest sees a failed read; the server tells the client's story
        s.closed = True
        return Err(V("last-operation-failed", st().new("error", IoError(str(exc)))))
    if n and not data:
        s.closed = True
        return Err(V("closed"))
    return Ok(data)


def _skip(stream: int, n: int) -> Any:
    r = _read(stream, n)
    return Ok(len(r.value)) if isinstance(r, Ok) else r


IMPLS[IO_S + "[method]input-stream.read"] = _read
IMPLS[IO_S + "[method]input-stream.blocking-read"] = _read
IMPLS[IO_S + "[method]input-stream.skip"] = _skip
IMPLS[IO_S + "[method]input-stream.blocking-skip"] = _skip
IMPLS[IO_S + "[method]input-stream.subscribe"] = _subscribe_ready
IMPLS[IO_S + "[method]output-stream.subscribe"] = _subscribe_ready

# wasmtime's limits on output streams (wasmtime-wasi `p2/host/io.rs`, wasmtime-wasi-http
# `p2/body.rs`): `check-write` permits the body stream's chunk size (1 MiB by default), a `write`
# beyond the permit traps ("write exceeded budget"), and the blocking helpers take at most 4,096
# bytes a call, more traps. A guest that passes here passes on Spin.
WRITE_BUDGET = 1 << 20
BLOCKING_MAX = 4096


def _out(stream: int) -> OutStream:
    o: OutStream = st().get(stream)
    return o


@impl(IO_S + "[method]output-stream.check-write")
def _check_write(_s: int) -> Any:
    return Err(V("closed")) if st().client_gone else Ok(WRITE_BUDGET)


def _put(stream: int, data: bytes) -> Any:
    ok = _out(stream).write(data)
    return Err(V("closed")) if ok is False else Ok()


@impl(IO_S + "[method]output-stream.write")
def _write(stream: int, data: bytes) -> Any:
    if len(data) > WRITE_BUDGET:
        raise hostlink.Unsupported("write exceeded budget")
    return _put(stream, data)


@impl(IO_S + "[method]output-stream.blocking-write-and-flush")
def _blocking_write(stream: int, data: bytes) -> Any:
    if len(data) > BLOCKING_MAX:
        raise hostlink.Unsupported("Buffer too large for blocking-write-and-flush (expected at most 4096)")
    return _put(stream, data)


@impl(IO_S + "[method]output-stream.flush", IO_S + "[method]output-stream.blocking-flush")
def _flush(_s: int) -> Any:
    return Err(V("closed")) if st().client_gone else Ok()


@impl(IO_S + "[method]output-stream.write-zeroes")
def _write_zeroes(stream: int, n: int) -> Any:
    if n > WRITE_BUDGET:
        raise hostlink.Unsupported("write exceeded budget")
    return _put(stream, b"\0" * n)


@impl(IO_S + "[method]output-stream.blocking-write-zeroes-and-flush")
def _blocking_write_zeroes(stream: int, n: int) -> Any:
    if n > BLOCKING_MAX:
        raise hostlink.Unsupported("Buffer too large for blocking-write-zeroes-and-flush "
                                   "(expected at most 4096)")
    return _put(stream, b"\0" * n)


@impl(IO_S + "[method]output-stream.splice", IO_S + "[method]output-stream.blocking-splice")
def _splice(out: int, src: int, n: int) -> Any:
    r = _read(src, min(n, WRITE_BUDGET))
    if isinstance(r, Err):
        return r
    put = _put(out, r.value)
    return put if isinstance(put, Err) else Ok(len(r.value))


# ---------------------------------------------------------------- wasi:cli stdio, clocks


def _stdio(name: str) -> hostlink.HostFn:
    def get() -> int:
        s = st()
        return s.new("output-stream", OutStream(lambda b: s.log(name, b)))
    return get


IMPLS["wasi:cli/stdout#get-stdout"] = _stdio("stdout")
IMPLS["wasi:cli/stderr#get-stderr"] = _stdio("stderr")


@impl("wasi:cli/stdin#get-stdin")
def _stdin() -> int:
    return st().new("input-stream", InStream(lambda n: b""))


@impl("wasi:clocks/monotonic-clock#now")
def _mono_now() -> int:
    return time.monotonic_ns()


@impl("wasi:clocks/monotonic-clock#resolution")
def _mono_res() -> int:
    return 1


@impl("wasi:clocks/monotonic-clock#subscribe-instant")
def _sub_instant(when: int) -> int:
    return st().new("pollable", Pollable(when / 1e9))


@impl("wasi:clocks/monotonic-clock#subscribe-duration")
def _sub_duration(ns: int) -> int:
    return st().new("pollable", Pollable(time.monotonic() + ns / 1e9))


# ---------------------------------------------------------------- wasi:http/types: fields

H = "wasi:http/types#"


def _fields(rep: int) -> Fields:
    f: Fields = st().get(rep)
    return f


@impl(H + "[constructor]fields")
def _fields_new() -> int:
    return st().new("fields", Fields([]))


def _valid_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name)


@impl(H + "[static]fields.from-list")
def _fields_from_list(entries: list[tuple[str, bytes]]) -> Any:
    for n, _ in entries:
        if not _valid_name(n):
            return Err(V("invalid-syntax"))
    return Ok(st().new("fields", Fields([(n.lower(), bytes(v)) for n, v in entries])))


@impl(H + "[method]fields.get")
def _fields_get(f: int, name: str) -> list[bytes]:
    k = name.lower()
    return [v for n, v in _fields(f).entries if n == k]


@impl(H + "[method]fields.has")
def _fields_has(f: int, name: str) -> bool:
    k = name.lower()
    return any(n == k for n, _ in _fields(f).entries)


@impl(H + "[method]fields.set")
def _fields_set(f: int, name: str, values: list[bytes]) -> Any:
    fl = _fields(f)
    if fl.immutable:
        return Err(V("immutable"))
    if not _valid_name(name):
        return Err(V("invalid-syntax"))
    k = name.lower()
    fl.entries = [(n, v) for n, v in fl.entries if n != k] + [(k, v) for v in values]
    return Ok()


@impl(H + "[method]fields.delete")
def _fields_delete(f: int, name: str) -> Any:
    fl = _fields(f)
    if fl.immutable:
        return Err(V("immutable"))
    k = name.lower()
    fl.entries = [(n, v) for n, v in fl.entries if n != k]
    return Ok()


@impl(H + "[method]fields.append")
def _fields_append(f: int, name: str, value: bytes) -> Any:
    fl = _fields(f)
    if fl.immutable:
        return Err(V("immutable"))
    if not _valid_name(name):
        return Err(V("invalid-syntax"))
    fl.entries.append((name.lower(), value))
    return Ok()


@impl(H + "[method]fields.entries")
def _fields_entries(f: int) -> list[tuple[str, bytes]]:
    return list(_fields(f).entries)


@impl(H + "[method]fields.clone")
def _fields_clone(f: int) -> int:
    return st().new("fields", Fields(list(_fields(f).entries)))


# ---------------------------------------------------------------- incoming request

_METHODS = {"GET": "get", "HEAD": "head", "POST": "post", "PUT": "put", "DELETE": "delete",
            "CONNECT": "connect", "OPTIONS": "options", "TRACE": "trace", "PATCH": "patch"}


@impl(H + "[method]incoming-request.method")
def _req_method(_r: int) -> V:
    m = st().request.method
    return V(_METHODS[m]) if m in _METHODS else V("other", m)


@impl(H + "[method]incoming-request.path-with-query")
def _req_path(_r: int) -> str:
    return st().request.path_with_query


@impl(H + "[method]incoming-request.scheme")
def _req_scheme(_r: int) -> V:
    return V("HTTPS") if st().request.scheme == "https" else V("HTTP")


@impl(H + "[method]incoming-request.authority")
def _req_authority(_r: int) -> str:
    return st().request.authority


@impl(H + "[method]incoming-request.headers")
def _req_headers(_r: int) -> int:
    s = st()
    return s.new("fields", Fields(s.request.headers, immutable=True))


@impl(H + "[method]incoming-request.consume")
def _req_consume(r: int) -> Any:
    s = st()
    if s.extra.get("consumed"):
        return Err()
    s.extra["consumed"] = True
    return Ok(s.new("incoming-body", IncomingBody(s.read_request)))


@impl(H + "[method]incoming-body.stream")
def _body_stream(b: int) -> Any:
    s = st()
    body: IncomingBody = s.get(b)
    if body.stream_taken:
        return Err()
    body.stream_taken = True
    return Ok(s.new("input-stream", InStream(body.read)))


@impl(H + "[static]incoming-body.finish")
def _body_finish(b: int) -> int:
    s = st()
    s.drop(b)
    return s.new("future-trailers", None)


@impl(H + "[method]future-trailers.subscribe", H + "[method]future-incoming-response.subscribe")
def _future_subscribe(_f: int) -> int:
    return st().new("pollable", Pollable())


@impl(H + "[method]future-trailers.get")
def _trailers_get(_f: int) -> Any:
    return Ok(Ok(None))  # some(ok(ok(none))): no trailers


# ---------------------------------------------------------------- outgoing response


@impl(H + "[constructor]outgoing-response")
def _resp_new(headers: int) -> int:
    s = st()
    return s.new("outgoing-response", OutgoingResponse(s.take(headers)))


@impl(H + "[method]outgoing-response.status-code")
def _resp_status(r: int) -> int:
    status: int = st().get(r).status
    return status


@impl(H + "[method]outgoing-response.set-status-code")
def _resp_set_status(r: int, code: int) -> Any:
    if not 100 <= code <= 999:
        return Err()
    st().get(r).status = code
    return Ok()


@impl(H + "[method]outgoing-response.headers", H + "[method]outgoing-request.headers")
def _child_headers(r: int) -> int:
    s = st()
    parent = s.get(r)
    return s.new("fields", Fields(parent.headers.entries, immutable=True))


@impl(H + "[method]outgoing-response.body")
def _resp_body(r: int) -> Any:
    s = st()
    resp: OutgoingResponse = s.get(r)
    if resp.body_taken:
        return Err()
    resp.body_taken = True
    return Ok(s.new("outgoing-body", OutgoingBody(s.body_write, s.finish_body)))


@impl(H + "[method]outgoing-body.write")
def _out_body_write(b: int) -> Any:
    s = st()
    body: OutgoingBody = s.get(b)
    if body.stream_taken:
        return Err()
    body.stream_taken = True
    return Ok(s.new("output-stream", OutStream(body.write)))


@impl(H + "[static]outgoing-body.finish")
def _out_body_finish(b: int, _trailers: int | None) -> Any:
    body: OutgoingBody = st().take(b)
    body.on_finish()
    return Ok()


@impl(H + "[static]response-outparam.set")
def _outparam_set(param: int, result: Any) -> None:
    s = st()
    s.drop(param)
    if isinstance(result, Err):
        code = result.value  # an error-code variant
        if isinstance(code, V) and code.value is None:
            code = code.tag
        elif isinstance(code, V):
            code = f"{code.tag}: {code.value!r}"
        s.guest_error = f"guest set an error response: {code}"
        s.set_response(500, [("content-type", b"text/plain")])
        s.body_write(b"Internal Server Error\n")  # finished after the executor logged the reason
        return
    resp: OutgoingResponse = s.take(result.value)
    s.set_response(resp.status, resp.headers.entries)
    if s.finished:  # the body was finished before the response was set
        s.sink_call(s.sink.finish)


@impl(H + "http-error-code")
def _http_error_code(_e: int) -> None:
    return None


# ---------------------------------------------------------------- outgoing request (client)


@impl(H + "[constructor]outgoing-request")
def _oreq_new(headers: int) -> int:
    s = st()
    return s.new("outgoing-request", OutgoingRequest(s.take(headers)))


def _oreq(r: int) -> OutgoingRequest:
    o: OutgoingRequest = st().get(r)
    return o


@impl(H + "[method]outgoing-request.method")
def _oreq_method(r: int) -> Any:
    m = _oreq(r).method
    return m if isinstance(m, V) else V(str(m))


@impl(H + "[method]outgoing-request.set-method")
def _oreq_set_method(r: int, m: Any) -> Any:
    _oreq(r).method = m
    return Ok()


@impl(H + "[method]outgoing-request.path-with-query")
def _oreq_path(r: int) -> str | None:
    return _oreq(r).path_with_query


@impl(H + "[method]outgoing-request.set-path-with-query")
def _oreq_set_path(r: int, p: str | None) -> Any:
    _oreq(r).path_with_query = p
    return Ok()


@impl(H + "[method]outgoing-request.scheme")
def _oreq_scheme(r: int) -> Any:
    return _oreq(r).scheme


@impl(H + "[method]outgoing-request.set-scheme")
def _oreq_set_scheme(r: int, sch: Any) -> Any:
    _oreq(r).scheme = sch
    return Ok()


@impl(H + "[method]outgoing-request.authority")
def _oreq_authority(r: int) -> str | None:
    return _oreq(r).authority


@impl(H + "[method]outgoing-request.set-authority")
def _oreq_set_authority(r: int, a: str | None) -> Any:
    _oreq(r).authority = a
    return Ok()


@impl(H + "[method]outgoing-request.body")
def _oreq_body(r: int) -> Any:
    s = st()
    req = _oreq(r)
    if req.body_taken:
        return Err()
    req.body_taken = True
    return Ok(s.new("outgoing-body", OutgoingBody(req.body.extend, lambda: None)))


@impl("wasi:http/outgoing-handler#handle")
def _outgoing_handle(r: int, _options: int | None) -> Any:
    s = st()
    req: OutgoingRequest = s.take(r)
    if s.outbound is None:
        return Err(V("HTTP-request-denied"))
    s.flush_response()
    result = s.outbound(s, req)
    if isinstance(result, Err):  # refused before sending (denied, malformed)
        return result
    value = result.value
    if isinstance(value, Err):  # failed on the way: the future resolves to the error
        return Ok(s.new("future-incoming-response", FutureResponse(value)))
    resp: IncomingResponse = value
    return Ok(s.new("future-incoming-response",
                    FutureResponse(Ok(s.new("incoming-response", resp)))))


@impl(H + "[method]future-incoming-response.get")
def _future_resp_get(f: int) -> Any:
    fut: FutureResponse = st().get(f)
    if fut.taken:
        return Err()  # some(err): already taken
    fut.taken = True
    return Ok(fut.result)


@impl(H + "[method]incoming-response.status")
def _iresp_status(r: int) -> int:
    status: int = st().get(r).status
    return status


@impl(H + "[method]incoming-response.headers")
def _iresp_headers(r: int) -> int:
    s = st()
    return s.new("fields", Fields(s.get(r).headers, immutable=True))


@impl(H + "[method]incoming-response.consume")
def _iresp_consume(r: int) -> Any:
    s = st()
    resp: IncomingResponse = s.get(r)
    return Ok(s.new("incoming-body", IncomingBody(resp.body)))


# ---------------------------------------------------------------- wasi:cli environment (Python side)


@impl("wasi:filesystem/preopens#get-directories")
def _preopens() -> list[tuple[int, str]]:
    s = st()
    fs = s.extra.get("preopens")
    return fs(s) if fs is not None else []
