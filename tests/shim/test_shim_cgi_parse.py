"""WAGI output → response: the CGI header block, its end, and a body kept byte for byte."""

from __future__ import annotations

import pytest

from shim.errors import GuestError
from shim.executors import parse_cgi


@pytest.mark.parametrize(("out", "status", "headers", "body"), [
    (b"Content-Type: text/plain\n\nhi", 200, [("content-type", b"text/plain")], b"hi"),
    (b"Content-Type: text/plain\r\n\r\nhi", 200, [("content-type", b"text/plain")], b"hi"),
    # the body's own leading newlines are the guest's, whichever line end the headers used
    (b"Content-Type: x\r\n\r\n\r\nbody", 200, [("content-type", b"x")], b"\r\nbody"),
    (b"Content-Type: x\n\n\nbody", 200, [("content-type", b"x")], b"\nbody"),
    (b"Status: 201 Created\r\nX-A: b:c\r\n\r\n", 201, [("x-a", b"b:c")], b""),
    (b"Location: /there\n\n", 302, [("location", b"/there")], b""),
    (b"Status: 404\nLocation: /x\n\n", 404, [("location", b"/x")], b""),
])
def test_cgi_output(out: bytes, status: int, headers: list[tuple[str, bytes]], body: bytes) -> None:
    r = parse_cgi("c", out)
    assert (r.status, r.headers, r.body) == (status, headers, body)


@pytest.mark.parametrize(("out", "message"), [
    (b"no header block at all", "WAGI output has no header block"),
    (b"Content-Type text/plain\n\nx", "malformed WAGI header line"),
    (b"Status: abc\n\nx", "malformed WAGI status 'abc'"),
])
def test_bad_cgi_output_names_the_component(out: bytes, message: str) -> None:
    with pytest.raises(GuestError, match=message) as err:
        parse_cgi("cgi", out)
    assert "cgi" in str(err.value)
