"""The WAGI executor running a real C program (guests/cgi.c, wasi-libc), over a real socket: what
a CGI program sees (environment, argv, stdin) and how its stdout and stderr come back."""

from __future__ import annotations

import logging
import random
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from shim_testlib import Running, Serve, make_app

from shim.executors import WagiExecutor

C_APP = """\
    spin_manifest_version = 2
    [application]
    name = "c-wagi"
    [[trigger.http]]
    route = "/c/..."
    component = "cgi"
    executor = { type = "wagi" }
    [component.cgi]
    source = "cgi.wasm"
    environment = { FROM_MANIFEST = "from spin.toml" }
    files = [{ source = "assets", destination = "/data" }]
"""
HELLO = "hello from a file\nsecond line\n"


@pytest.fixture
def c_app(serve: Serve, tmp_path: Path) -> Running:
    return serve(make_app(tmp_path / "app", C_APP, guests=("cgi.wasm",), files={"assets/hello.txt": HELLO}))


def _report(body: bytes) -> dict[str, str]:
    """The `KEY=value` lines the guest prints for any path it has no route for."""
    return dict(line.split("=", 1) for line in body.decode().splitlines())


def _crc(data: bytes) -> str:
    return f"{zlib.crc32(data):08x}"


@pytest.mark.parametrize(("method", "target", "headers", "body", "expected"), [
    ("POST", "/c/info?a=1&b=two", {"x-test": "hdr value", "content-type": "text/plain"}, b"hello body",
     {"REQUEST_METHOD": "POST", "PATH_INFO": "/info", "QUERY_STRING": "a=1&b=two", "HTTP_X_TEST": "hdr value",
      "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "10", "argc": "3", "argv[0]": "/c", "argv[1]": "a=1",
      "argv[2]": "b=two"}),
    ("GET", "/c", {}, b"",
     {"REQUEST_METHOD": "GET", "PATH_INFO": "", "QUERY_STRING": "", "HTTP_X_TEST": "(unset)",
      "CONTENT_LENGTH": "0", "argc": "1", "argv[0]": "/c"}),
    ("PUT", "/c/deep/er/path?only", {"X-Test": "Mixed-Case"}, b"\x00\xff\n\r\n",
     {"REQUEST_METHOD": "PUT", "PATH_INFO": "/deep/er/path", "QUERY_STRING": "only",
      "HTTP_X_TEST": "Mixed-Case", "CONTENT_LENGTH": "5", "argc": "2", "argv[1]": "only"}),
    ("DELETE", "/c/x", {}, b"",
     {"REQUEST_METHOD": "DELETE", "PATH_INFO": "/x", "argc": "1"}),
])
def test_c_program_sees_the_cgi_environment_argv_and_body(
    c_app: Running, method: str, target: str, headers: dict[str, str], body: bytes, expected: dict[str, str]
) -> None:
    status, resp_headers, data = c_app.request(method, target, body=body or None, headers=headers)
    assert status == 200, data
    assert resp_headers["content-type"] == "text/plain; charset=utf-8"
    assert resp_headers["x-lang"] == "c"
    report = _report(data)
    assert {k: report.get(k) for k in expected} == expected
    assert report["SCRIPT_NAME"] == "/c"
    assert report["X_MATCHED_ROUTE"] == "/c/..."
    assert report["X_FULL_URL"] == f"http://127.0.0.1:{c_app.port}{target}"
    assert report["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert report["FROM_MANIFEST"] == "from spin.toml"
    assert (report["body_length"], report["body_crc32"]) == (str(len(body)), _crc(body))


def test_a_1_mib_body_reaches_the_program_whole_on_stdin(c_app: Running) -> None:
    body = random.Random(5).randbytes(1 << 20)
    status, _, data = c_app.request("POST", "/c/sum", body=body)
    assert status == 200
    report = _report(data)
    assert (report["body_length"], report["body_crc32"]) == (str(1 << 20), _crc(body))
    assert report["CONTENT_LENGTH"] == str(1 << 20)


@pytest.mark.parametrize("route", ["/c/echo", "/c/echo-crlf"])  # CGI header lines end in LF or CRLF
@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 1 << 20])
def test_echo_writes_the_body_back_byte_for_byte(c_app: Running, route: str, size: int) -> None:
    body = random.Random(size).randbytes(size)
    status, headers, data = c_app.request("POST", route, body=body)
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    assert (headers["x-body-length"], headers["x-body-crc32"]) == (str(size), _crc(body))
    assert headers["content-length"] == str(size)
    assert data == body


def test_a_body_that_starts_with_a_newline_keeps_it(c_app: Running) -> None:
    body = b"\n\nafter two newlines\n"
    assert c_app.request("POST", "/c/echo", body=body)[2] == body


@pytest.mark.parametrize(("target", "status", "headers", "body"), [
    # "Status: 201 Created", CRLF line ends, a header value with a colon in it
    ("/c/created", 201, {"content-type": "text/plain", "x-custom": "made in C: yes"}, b"created\n"),
    # only a Location header: a CGI redirect, so 302
    ("/c/redirect", 302, {"location": "/c/info"}, b""),
])
def test_cgi_status_and_headers_are_parsed(c_app: Running, target: str, status: int,
                                           headers: dict[str, str], body: bytes) -> None:
    got_status, got_headers, data = c_app.request("GET", target)
    assert got_status == status
    assert {k: got_headers.get(k) for k in headers} == headers
    assert "status" not in got_headers  # the CGI Status line is the HTTP status, not a header
    assert data == body


def test_stderr_goes_to_the_log_prefixed_with_the_component_id(
    c_app: Running, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="shim.guest"):
        status, _, data = c_app.request("POST", "/c/log", body=b"x")
    assert (status, data) == (200, b"logged\n")  # stdout is the response, not the log
    lines = [r.getMessage() for r in caplog.records if r.name == "shim.guest"]
    assert len(lines) == 2, lines
    assert all(line.startswith("[cgi] ") for line in lines)
    assert lines[0].endswith("c guest says hello on stderr, method=POST")
    assert lines[1].endswith("second line without a newline")
    assert not any("logged" in line for line in lines)


def test_files_are_readable_and_not_writable(c_app: Running) -> None:
    status, _, data = c_app.request("GET", "/c/file")
    assert status == 200
    assert data == HELLO.encode() + b"write=denied\nescape=denied\n"
    executor = c_app.app.executors["cgi"]
    assert isinstance(executor, WagiExecutor)
    (host_dir, guest_dir), = executor.preopens
    assert guest_dir == "/"
    visible = sorted(str(p.relative_to(host_dir)) for p in Path(host_dir).rglob("*"))
    assert visible == ["data", "data/hello.txt"]  # nothing was created


@pytest.mark.parametrize(("target", "reason"), [
    ("/c/exit", "component 'cgi': WAGI module exited with status 3"),
    ("/c/nohead", "component 'cgi': WAGI output has no header block"),
])
def test_a_failing_program_is_a_500_with_the_reason_logged_and_serving_goes_on(
    c_app: Running, caplog: pytest.LogCaptureFixture, target: str, reason: str
) -> None:
    with caplog.at_level(logging.INFO):
        status, _, data = c_app.request("GET", target)
    assert (status, data) == (500, b"Internal Server Error\n")
    assert any(reason in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert b"about to fail" not in data
    assert c_app.request("GET", "/c/still?up")[0] == 200


def test_concurrent_requests_each_see_only_their_own_request(c_app: Running) -> None:
    def one(i: int) -> tuple[int, dict[str, str]]:
        body = f"body {i}".encode() * (i + 1)
        status, _, data = c_app.request("POST", f"/c/n{i}?i={i}", body=body, headers={"x-test": f"h{i}"})
        return status, _report(data)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(32)))
    for i, (status, report) in enumerate(results):
        body = f"body {i}".encode() * (i + 1)
        assert status == 200
        assert (report["PATH_INFO"], report["QUERY_STRING"], report["HTTP_X_TEST"], report["argv[1]"]) == (
            f"/n{i}", f"i={i}", f"h{i}", f"i={i}")
        assert (report["body_length"], report["body_crc32"]) == (str(len(body)), _crc(body))
