"""`spindle shim up` as a user runs it: a real process, a real port, SIGTERM drains in-flight work."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shim_testlib import WAT_APP, free_port, make_app, shim_up


def test_up_serves_and_sigterm_drains_in_flight_request(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "1") as up:
        # a request whose body is still arriving when SIGTERM comes
        conn = http.client.HTTPConnection("127.0.0.1", up.port, timeout=30)
        conn.putrequest("POST", "/echo")
        conn.putheader("transfer-encoding", "chunked")
        conn.endheaders()
        conn.send(b"5\r\nfirst\r\n")
        time.sleep(0.3)
        up.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert up.proc.poll() is None  # still draining
        conn.send(b"6\r\nsecond\r\n0\r\n\r\n")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"firstsecond")
        conn.close()
        assert up.proc.wait(timeout=30) == 0
    assert "draining in-flight requests" in up.output
    assert "app wat-app serving on http://127.0.0.1:" in up.output


def test_up_request_timeout_option(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "1", "--request-timeout", "0.5") as up:
        t0 = time.monotonic()
        assert up.get("/spin")[0] == 500  # /spin never ends on its own: only the timeout answers
        # Well inside the client's 60 s: the 0.5 s limit cut it, not the client (loose for a busy box).
        assert time.monotonic() - t0 < 30
    assert "request timed out" in up.output


def test_up_with_two_worker_processes(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "2") as up:
        time.sleep(1.5)  # let the second process load from the warm artifact cache
        for i in range(20):
            assert up.get(f"/w{i}")[1].startswith(f"path=/w{i}".encode())
    pids = {line.split("shim[")[1].split("]")[0] for line in up.output.splitlines() if "serving on" in line}
    assert len(pids) == 2, up.output


@pytest.mark.parametrize(("manifest", "needle"), [
    ("spin_manifest_version = 2\n[application]\nname = 'x'\nnope = 1\n", "application.nope: unknown key"),
    (WAT_APP.replace("handler.wasm", "missing.wasm"), "component 'wat': cannot read source"),
])
def test_up_load_errors_exit_1_with_a_clear_message(tmp_path: Path, manifest: str, needle: str) -> None:
    root = make_app(tmp_path / "app", manifest)
    proc = subprocess.run([sys.executable, "-m", "reconciler.cli", "shim", "up", str(root / "spin.toml"),
                           "--listen", f"127.0.0.1:{free_port()}", "--cache-dir", str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert needle in proc.stderr


def test_up_runtime_config_file_and_listen_addr_from_env(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP
                    + 'variables = { message = "{{ greeting }}", dirs = "{{ path }}" }\n'
                    + '[variables]\ngreeting = { required = true }\npath = { default = "unset" }\n')
    rc = tmp_path / "rc.toml"
    rc.write_text('[[variables_provider]]\ntype = "env"\nprefix = "MYAPP"\n')
    env = {"MYAPP_GREETING": "from the runtime config"}
    base = [sys.executable, "-m", "reconciler.cli", "shim", "up", str(root),
            "--listen", f"127.0.0.1:{free_port()}", "--cache-dir", str(tmp_path / "cache")]
    # only the runtime config's provider knows MYAPP_: without the file the app does not load
    without = subprocess.run(base, capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert without.returncode == 1
    assert "greeting" in without.stderr and "required" in without.stderr
    missing = subprocess.run([*base, "--runtime-config-file", str(tmp_path / "nope.toml")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "nope.toml does not exist" in missing.stderr
    with shim_up(root, tmp_path, "--workers", "1", "--runtime-config-file", str(rc), env=env,
                 listen_from_env=True) as up:
        assert up.get("/cfg/message") == (200, b"from the runtime config")
        # like `spin up`, not containerd-shim-spin: the host's bare $PATH is no app variable
        assert up.get("/cfg/dirs") == (200, b"unset")


def test_container_mode_reads_listen_addr_from_env(tmp_path: Path) -> None:
    """...and, as containerd-shim-spin does, a variable from its bare `<NAME>`."""
    root = make_app(tmp_path / "app", WAT_APP + 'variables = { message = "{{ greeting }}" }\n'
                                                '[variables]\ngreeting = { required = true }\n')
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "shim", str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "SPIN_HTTP_LISTEN_ADDR": f"127.0.0.1:{port}",
                                 "SPINDLE_SHIM_WORKERS": "1", "XDG_CACHE_HOME": str(tmp_path / "xdg"),
                                 "GREETING": "from the bare name"})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/c")
                assert conn.getresponse().read().startswith(b"path=/c")
                conn.request("GET", "/cfg/message")
                assert conn.getresponse().read() == b"from the bare name"
                break
            except (ConnectionRefusedError, http.client.RemoteDisconnected):
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert any((tmp_path / "xdg" / "spindle-shim").iterdir())  # the artifact cache was filled


def test_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "2") as up:
        (first,) = up.children()
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while up.children() in ([], [first]):
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.1)
        for i in range(10):
            assert up.get(f"/r{i}")[0] == 200
    assert f"worker {first} exited" in up.output


def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP)
    with shim_up(root, tmp_path, "--workers", "2") as up:
        (worker,) = up.children()
        up.proc.kill()
        up.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            try:
                if Path(f"/proc/{worker}/stat").read_text().split()[2] == "Z":  # exited, not yet reaped
                    break
            except FileNotFoundError:
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            raise AssertionError("the worker outlived its parent")


def _up(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler.cli", "shim", "up", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("where", ["missing", "empty-dir", "missing/spin.toml"])
def test_up_without_an_app_is_a_usage_error(tmp_path: Path, where: str) -> None:
    (tmp_path / "empty-dir").mkdir()
    proc = _up(str(tmp_path / where), "--listen", f"127.0.0.1:{free_port()}")
    assert proc.returncode == 2, proc.stderr
    assert str(tmp_path / where) in proc.stderr and "spin.toml" in proc.stderr


def test_up_on_a_busy_port_exits_2_naming_the_address(tmp_path: Path) -> None:
    root = make_app(tmp_path / "app", WAT_APP)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        addr = f"127.0.0.1:{busy.getsockname()[1]}"
        proc = _up(str(root), "--listen", addr, "--workers", "1", "--cache-dir", str(tmp_path / "c"))
    assert proc.returncode == 2
    assert f"error: cannot listen on {addr}: Address already in use" in proc.stderr
