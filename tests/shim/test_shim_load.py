"""Load: 10,000 requests at concurrency 16 through a real socket into `spindle shim up`; no errors,
and the server's memory (RSS) stays flat."""

from __future__ import annotations

from pathlib import Path

import pytest
from shim_testlib import WAT_APP, make_app, shim_up

from shim.loadgen import encode_request, run_load


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_ten_thousand_requests_no_errors_flat_memory(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "1") as up:
        request = encode_request("POST", "/echo", b"x" * 512)
        warm = run_load("127.0.0.1", up.port, request, 1000, 16)
        assert warm.errors == 0, warm.statuses
        before = rss_kib(up.proc.pid)
        result = run_load("127.0.0.1", up.port, request, 10_000, 16)
        after = rss_kib(up.proc.pid)
        assert result.errors == 0, result.statuses
        assert result.statuses == {200: 10_000}
        # flat: well under 1 KiB retained per request (a leak of one body each would be ~5 MiB)
        assert after - before < 4 * 1024, f"RSS grew from {before} KiB to {after} KiB"
