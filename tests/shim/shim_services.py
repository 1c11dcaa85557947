"""Real services for the shim's host-API and trigger tests, each started by its fixture on
127.0.0.1 (a free port, a private directory) and stopped after: Debian's `redis-server` and
`mosquitto` (with a user and password), `postgresql` and `mariadb-server`."""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from shim_testlib import free_port


@dataclass
class Service:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _wait_port(proc: subprocess.Popen[bytes], port: int, what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited early: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not start listening on 127.0.0.1:{port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def start_redis(work: Path) -> Iterator[Service]:
    """`redis-server` on a free loopback port, no persistence, files in `work`; stopped after."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    log = work / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
                                 "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_port(proc, port, "redis-server", log)
        yield Service(port, proc)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One `redis-server` for the session's tests."""
    with start_redis(tmp_path_factory.mktemp("redis")) as service:
        yield service


MQTT_USER, MQTT_PASSWORD = "spin", "s3cret"


@contextmanager
def start_mosquitto(work: Path) -> Iterator[Service]:
    """`mosquitto` on a free loopback port; only MQTT_USER / MQTT_PASSWORD may connect."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    passwd = shutil.which("mosquitto_passwd")
    if not Path(binary).exists() or passwd is None:
        pytest.skip("mosquitto is not installed (Debian package mosquitto)")
    port = free_port()
    subprocess.run([passwd, "-c", "-b", str(work / "passwd"), MQTT_USER, MQTT_PASSWORD], check=True,
                   capture_output=True)
    # run as whoever runs the tests (as root, mosquitto would switch to user `mosquitto`, who cannot
    # read the test's private directory)
    (work / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\n"
                                         f"password_file {work / 'passwd'}\npersistence false\n"
                                         f"user {getpass.getuser()}\n")
    log = work / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(work / "mosquitto.conf")], stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        _wait_port(proc, port, "mosquitto", log)
        yield Service(port, proc)
    finally:
        _stop(proc)


@contextmanager
def start_postgres() -> Iterator[Service]:
    """A PostgreSQL cluster of its own (trust auth, user `spin`, database `spin`) on a free loopback
    port. As root it runs as user `postgres` (PostgreSQL refuses root), in a directory it owns."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    bindir = Path(bins[-1]).parent
    work = Path(tempfile.mkdtemp(prefix="shim-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(work, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(work / "data"), "-A", "trust",
                    "-U", "spin", "--no-sync"], check=True, capture_output=True)
    port = free_port()
    log = work / "postgres.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*as_user, str(bindir / "postgres"), "-D", str(work / "data"),
                                 "-h", "127.0.0.1", "-p", str(port), "-k", str(work), "-F"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_port(proc, port, "postgres", log)
        deadline = time.monotonic() + 30
        createdb = [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "spin", "spin"]
        while subprocess.run(createdb, capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"createdb failed: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield Service(port, proc)
    finally:
        _stop(proc)
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def start_mariadb(work: Path) -> Iterator[Service]:
    """A MariaDB server of its own on a free loopback port, database `spin`, user root without a
    password (grant tables skipped)."""
    server = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
    install = shutil.which("mariadb-install-db")
    if not Path(server).exists() or install is None:
        pytest.skip("MariaDB is not installed (Debian package mariadb-server)")
    user = getpass.getuser()
    subprocess.run([install, "--no-defaults", f"--datadir={work / 'data'}", f"--user={user}",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True)
    port = free_port()
    log = work / "mariadb.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([server, "--no-defaults", f"--datadir={work / 'data'}", f"--user={user}",
                                 "--bind-address=127.0.0.1", f"--port={port}", f"--socket={work / 'sock'}",
                                 "--skip-grant-tables", "--skip-networking=0"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_port(proc, port, "mariadbd", log)
        import pymysql
        conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
        conn.cursor().execute("CREATE DATABASE IF NOT EXISTS spin")
        conn.close()
        yield Service(port, proc)
    finally:
        _stop(proc)
