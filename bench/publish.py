"""Publishing 200 Spin projects to a real docker-registry: spindle vs `oras push` of the same files.

    python3 bench/publish.py [--projects 200]

One Git repository of N projects (a distinct WAGI module of about 200 bytes, a 4 KiB page and a small file
each) and two docker-registry processes on 127.0.0.1 (one per tool, so neither finds the other's blobs).
Per tool: the first push of all N, then the same again (spindle: nothing changed, so a no-op; oras-py:
its `push`, which has no such check), each timed and counted through a small recording proxy (bytes of
every PUT/PATCH body). Then spindle's no-op once more straight to the registry, which is the goal:
the no-op publish of 200 projects in ≤ 2 s. Needs `docker-registry` (Debian) and `oras` (PyPI).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "oci"), str(ROOT / "tests" / "publish")]

from oci_testlib import ProxyHandler, ProxyState, run_registry, serve, server_host  # noqa: E402
from publishlib import commit_all, init_repo, wagi_wasm, write_project  # noqa: E402

from oci.registry import RegistryClient  # noqa: E402
from reconciler.publish.publisher import PublishResult, Request, Settings, Target, publish_many  # noqa: E402

GOAL_NOOP_SECONDS = 2.0


def _sent(state: ProxyState) -> int:
    return sum(int(h.get("Content-Length") or 0) for method, _, h in state.log if method in ("PUT", "PATCH"))


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _spindle(repo: Path, host: str, count: int) -> Callable[[], list[PublishResult]]:
    requests = [
        Request(repo / "apps" / f"p{i:03}" / "spin.toml", Target.parse(f"{host}/bench/p{i:03}"))
        for i in range(count)
    ]

    def run() -> list[PublishResult]:
        with RegistryClient() as client:
            results = publish_many(repo, requests, Settings(), client)
        failed = [r for r in results if not isinstance(r, PublishResult)]
        if failed:
            raise SystemExit(f"spindle publish failed: {failed[0]}")
        return [r for r in results if isinstance(r, PublishResult)]

    return run


def _oras(repo: Path, host: str, count: int) -> Callable[[], None]:
    import oras.client

    def run() -> None:
        client = oras.client.OrasClient(hostname=host, insecure=True)
        here = os.getcwd()
        try:
            for i in range(count):
                project = repo / "apps" / f"p{i:03}"
                os.chdir(project)
                files = [f"p{i:03}.wasm", "static/page.html", "static/small.txt", "spin.toml"]
                client.push(target=f"{host}/bench/p{i:03}:v1", files=files, quiet=True)
        finally:
            os.chdir(here)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=200)
    args = parser.parse_args()
    count = args.projects
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        base = Path(tmp)
        repo = init_repo(base / "repo")
        for i in range(count):
            project = write_project(repo, f"p{i:03}", f"project {i}")
            (project / "static" / "page.html").write_text(f"<p>{i}</p>" + "x" * 4096)
            (project / f"p{i:03}.wasm").write_bytes(wagi_wasm(f"project {i}"))
        commit_all(repo, "200 projects")
        rows: list[tuple[str, float, int]] = []
        with contextlib.ExitStack() as stack:
            for tool, factory in (("spindle", _spindle), ("oras push (oras-py)", _oras)):
                registry = stack.enter_context(run_registry(base / f"registry-{tool.split()[0]}"))
                state = ProxyState(upstream=registry.host)
                proxy = stack.enter_context(serve(ProxyHandler, state=state))
                run = factory(repo, server_host(proxy), count)
                for phase in ("first push", "again (no-op)"):
                    before = _sent(state)
                    seconds = _timed(run)
                    rows.append((f"{tool}: {phase}", seconds, _sent(state) - before))
                if tool == "spindle":
                    direct = _spindle(repo, registry.host, count)
                    noop = min(_timed(direct) for _ in range(3))
        print(
            f"{count} projects, {sum(1 for _ in repo.rglob('*.wasm'))} wasm files; through a recording proxy:"
        )
        for name, seconds, sent in rows:
            print(f"  {name:<34} {seconds:7.2f} s   {sent / 1024:9.1f} KiB uploaded")
        verdict = "meets" if noop <= GOAL_NOOP_SECONDS else "MISSES"
        print(
            f"spindle no-op straight to the registry (best of 3): {noop:.2f} s "
            f"({verdict} the goal of ≤ {GOAL_NOOP_SECONDS:.0f} s)"
        )


if __name__ == "__main__":
    main()
