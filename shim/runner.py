"""Running an app in the foreground: load, listen, serve on N processes, drain on SIGTERM.

The first process loads the app (compiling and filling the artifact cache) and serves; extra
workers are fresh interpreters (`python -m shim.worker`) that inherit the listening socket and
load from the warm cache. Fresh interpreters, not fork: wasmtime's engine has threads, and
forking a threaded process is unsafe.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from shim import mqtt_trigger, redis_trigger
from shim.app import DEFAULT_MAX_INSTANCE_MEMORY, CommandBinding, LoadedApp, LoadOptions, load_app
from shim.engine import default_cache_dir, new_engine
from shim.errors import ListenError
from shim.http1 import raise_fd_limit
from shim.manifest import RouteKind
from shim.server import SpinServer, parse_listen

log = logging.getLogger("shim")


@dataclass(frozen=True)
class RunOptions:
    target: Path
    listen: str
    runtime_config: Path | None = None
    state_dir: Path | None = None
    cache_dir: Path | None = None
    workers: int = 1
    # the container mode's behaviours (containerd-shim-spin's): the bare `<NAME>` environment
    # variable also sets variable `name`; no per-instance memory cap unless SPIN_MAX_INSTANCE_MEMORY
    # says so (None: the pod's cgroup limit is the bound). `spindle shim up` keeps the defaults.
    env_names_as_variables: bool = False
    max_instance_memory: int | None = DEFAULT_MAX_INSTANCE_MEMORY
    command_args: tuple[str, ...] = ()  # the guest's arguments for `[[trigger.command]]`s

    def to_json(self) -> str:
        return json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()})

    @classmethod
    def from_json(cls, text: str) -> RunOptions:
        d = json.loads(text)
        for k in ("target", "runtime_config", "state_dir", "cache_dir"):
            if d.get(k) is not None:
                d[k] = Path(d[k])
        d["command_args"] = tuple(d.get("command_args", ()))
        return cls(**d)


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s")


def default_runtime_config(target: Path, explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    root_rc = Path("/runtime-config.toml")
    return root_rc if root_rc.exists() else None


def load(opts: RunOptions, env: Mapping[str, str]) -> tuple[LoadedApp, object]:
    box = new_engine()
    app = load_app(opts.target, box.engine, LoadOptions(
        env=env, runtime_config=default_runtime_config(opts.target, opts.runtime_config),
        state_dir=opts.state_dir, cache_dir=opts.cache_dir or default_cache_dir(),
        env_names_as_variables=opts.env_names_as_variables, max_instance_memory=opts.max_instance_memory))
    return app, box


def bind(listen: str) -> socket.socket:
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    return sock


def serve(opts: RunOptions, env: Mapping[str, str], *, sock: socket.socket | None = None,
          on_ready: Callable[[int], None] | None = None, spawn_workers: bool = True,
          loaded: tuple[LoadedApp, object] | None = None) -> int:
    """Load (unless `loaded` is given) and serve until SIGTERM/SIGINT (0) or until a non-HTTP
    trigger ends (its status); returns after in-flight requests have finished. The non-HTTP
    triggers run in this process only when it is the serving one (`spawn_workers`)."""
    stopping = threading.Event()
    children: list[subprocess.Popen[bytes]] = []
    servers: list[SpinServer] = []
    status = [0]

    def on_trigger_exit(what: str, code: int) -> None:
        if not stopping.is_set():
            status[0] = code
            stopping.set()
            log.info("%s ended with status %d: stopping the app", what, code)
            for c in children:
                c.send_signal(signal.SIGTERM)
            for s in servers:
                s.shutdown()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("signal %d: draining in-flight requests", signum)
            for c in children:
                c.send_signal(signal.SIGTERM)
            for s in servers:
                s.shutdown()

    # installed before loading, so a signal during a long compile is not lost
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        faulthandler.register(signal.SIGUSR2, all_threads=True)  # stack dump on demand, for operators
    raise_fd_limit()
    app, _engine = loaded or load(opts, env)  # raises ShimError subclasses before anything listens
    sock = sock or bind(opts.listen)
    server = SpinServer(app, sock=sock)
    servers.append(server)
    if stopping.is_set():
        server.shutdown()
    fd = sock.fileno()

    def spawn() -> subprocess.Popen[bytes]:
        # a frozen build (the node's containerd-shim-spin-v2) runs its workers as itself
        program = [sys.executable, "_worker"] if getattr(sys, "frozen", False) else \
            [sys.executable, "-m", "shim.worker"]
        return subprocess.Popen([*program, str(fd), opts.to_json()],
                                pass_fds=(fd,), env={**env, "SPINDLE_SHIM_PARENT": str(os.getpid())})

    if spawn_workers and opts.workers > 1:
        os.set_inheritable(fd, True)
        children.extend(spawn() for _ in range(opts.workers - 1))
    started = [time.monotonic()] * len(children)
    host, port = sock.getsockname()[:2]
    log.info("app %s serving on http://%s:%d (%d process%s)", app.manifest.name, host, port,
             max(1, opts.workers), "es" if opts.workers > 1 else "")
    for t in app.manifest.http_triggers:
        log.info("  route %s -> %s", t.route.raw or "(private)", t.component or "static response")
    for dup, kept in app.router.duplicates:
        log.warning("  route %s -> %s duplicates the route of %s and is never used", dup.route.raw,
                    dup.component or "static response", kept.component or "static response")
    if any(t.route.based.startswith("/.well-known/spin/") for t in app.manifest.http_triggers):
        log.warning("  routes under /.well-known/spin/ are answered by the runtime and never reach the app")
    subscribers = redis_trigger.subscribers(app.redis, app.limits) if spawn_workers else []
    for b in app.redis if spawn_workers else ():
        log.info("  redis channel %s at %s -> %s", b.trigger.channel, _redacted(b.address),
                 b.trigger.component)
    if spawn_workers:  # the serving process, once: like `spin up`, on stdout
        print("\n".join(startup_lines(app, host, port)), flush=True)
    mqtt_subs = mqtt_trigger.subscribers(app.mqtt, app.limits) if spawn_workers else []
    for sub in subscribers:
        sub.start(on_trigger_exit)
    for msub in mqtt_subs:
        msub.start(on_trigger_exit)
    for cmd in app.commands if spawn_workers else ():
        _start_command(cmd, list(opts.command_args), app, on_trigger_exit)
    if on_ready is not None:
        on_ready(port)

    def replace_dead_workers() -> None:
        for i, child in enumerate(children):
            # a worker that died is replaced (at most once a second per slot)
            dead = child.poll() is not None
            if dead and not stopping.is_set() and time.monotonic() - started[i] > 1:
                log.error("worker %d exited with status %s; starting another", child.pid, child.returncode)
                children[i], started[i] = spawn(), time.monotonic()

    try:
        server.serve_forever(on_tick=replace_dead_workers)  # returns once drained after a stop
    finally:
        for sub in subscribers:
            sub.stop()
        for msub in mqtt_subs:
            msub.stop()
        server.server_close()
        for c in children:
            c.wait()
        app.close()
    log.info("stopped")
    return status[0]


def _start_command(cmd: CommandBinding, args: list[str], app: LoadedApp,
                   on_exit: Callable[[str, int], None]) -> None:
    """Run a command trigger once on its own thread; its status ends the app."""
    def run() -> None:
        code = cmd.executor.run(args, app.limits)
        on_exit(f"command trigger {cmd.trigger.id} ({cmd.trigger.component})", code)

    threading.Thread(target=run, name="shim-command", daemon=True).start()


def startup_lines(app: LoadedApp, host: str, port: int) -> list[str]:
    """What `spin up` prints at start: where it serves, each HTTP route (private routes are not
    reachable and not listed; wildcard routes marked), and here also each Redis subscription."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    lines = [f"Serving {base}", "Available Routes:"]
    for t in app.manifest.http_triggers:
        if t.route.kind is RouteKind.PRIVATE:
            continue
        name = t.component or f"{t.id} (static response)"
        path = t.route.based_prefix if t.route.kind is RouteKind.WILDCARD else t.route.based
        lines.append(f"  {name}: {base}{path or '/'}" + (" (wildcard)" if t.route.kind is RouteKind.WILDCARD
                                                          else ""))
    if app.commands:
        lines.append("Commands:")
        lines += [f"  {c.trigger.component}: wasi:cli/run" for c in app.commands]
    if app.mqtt:
        lines.append("MQTT Topics:")
        lines += [f"  {m.trigger.component}: {m.topic} (qos {m.trigger.qos}) at {_redacted(m.address)}"
                  for m in app.mqtt]
    if app.redis:
        lines.append("Redis Channels:")
        lines += [f"  {b.trigger.component}: {b.trigger.channel} at {_redacted(b.address)}"
                  for b in app.redis]
    return lines


def _redacted(address: str) -> str:
    """An address for the log, without a password."""
    scheme, sep, rest = address.partition("://")
    creds, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}" if at and ":" in creds else address
