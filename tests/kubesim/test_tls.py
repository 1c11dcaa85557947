"""kubesim's serving certificate: loopback names always, other bind addresses on demand."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509
from kubesim_fixtures import Raw

from kubesim import server as kserver
from kubesim import tls


def _sans(pair: tls.KeyPair) -> set[str]:
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName)
    )


def test_key_pair_is_reused_and_extended_for_new_hosts(tmp_path: Path) -> None:
    first = tls.ensure(tmp_path)
    assert _sans(first) == {"localhost", "127.0.0.1", "::1"}
    assert (first.key_file.stat().st_mode & 0o777) == 0o600
    pem = first.cert_pem
    assert tls.ensure(tmp_path).cert_pem == pem  # kept: kubeconfigs stay valid across restarts
    wider = tls.ensure(tmp_path, hosts=("10.1.2.3", "kubesim.local"))
    assert {"10.1.2.3", "kubesim.local", "127.0.0.1"} <= _sans(wider) and wider.cert_pem != pem


def test_wildcard_bind_is_reached_over_loopback_and_plain_http_is_refused() -> None:
    with kserver.start(":memory:", address="0.0.0.0") as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        assert Raw(srv).request("GET", "/version")[0] == 200
        import http.client

        plain = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        try:
            plain.request("GET", "/version")
            resp = plain.getresponse()
            assert resp.status != 200
        except (OSError, http.client.HTTPException, ssl.SSLError):
            pass
        assert Raw(srv).request("GET", "/version")[0] == 200  # still serving
