"""Guest output lines in the shim's log (pure)."""

from __future__ import annotations

import logging

import pytest

from shim.executors import GuestLog


@pytest.mark.parametrize(("writes", "expected"), [
    ([b"hello\n"], ["hello"]),
    ([b"hel", b"lo\nwor", b"ld"], ["hello", "world"]),
    ([b"a\n\nb\r\n"], ["a", "b"]),
    ([b"no newline at all"], ["no newline at all"]),
    ([b"\xff\xfebad utf8\n"], ["\ufffd\ufffdbad utf8"]),
])
def test_lines_are_prefixed_and_joined(caplog: pytest.LogCaptureFixture, writes: list[bytes],
                                       expected: list[str]) -> None:
    g = GuestLog("my-comp")
    with caplog.at_level(logging.INFO, logger="shim.guest"):
        for w in writes:
            g("stdout", w)
        g.flush()
    assert [r.getMessage() for r in caplog.records] == [f"[my-comp] stdout: {e}" for e in expected]


def test_streams_are_kept_apart(caplog: pytest.LogCaptureFixture) -> None:
    g = GuestLog("c")
    with caplog.at_level(logging.INFO, logger="shim.guest"):
        g("stdout", b"out-")
        g("stderr", b"err\n")
        g("stdout", b"line\n")
    assert [r.getMessage() for r in caplog.records] == ["[c] stderr: err", "[c] stdout: out-line"]
