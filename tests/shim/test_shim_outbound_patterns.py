"""allowed_outbound_hosts matching (pure)."""

from __future__ import annotations

import pytest

from shim.outbound import Outbound


@pytest.mark.parametrize(("allowed", "scheme", "host", "port", "ok"), [
    (["https://example.com"], "https", "example.com", 443, True),
    (["https://example.com"], "http", "example.com", 80, False),
    (["https://example.com"], "https", "example.com", 8443, False),
    (["https://example.com"], "https", "evil.com", 443, False),
    (["http://127.0.0.1:8080"], "http", "127.0.0.1", 8080, True),
    (["http://127.0.0.1:8080"], "http", "127.0.0.1", 8081, False),
    (["http://localhost:*"], "http", "localhost", 1234, True),
    (["https://*.example.com"], "https", "api.example.com", 443, True),
    (["https://*.example.com"], "https", "example.com", 443, False),
    (["*://*:*"], "http", "anything", 1, True),
    ([], "http", "127.0.0.1", 80, False),
])
def test_host_patterns(allowed: list[str], scheme: str, host: str, port: int, ok: bool) -> None:
    assert Outbound(allowed).allows(scheme, host, port) is ok
