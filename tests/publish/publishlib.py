"""Spin projects for the publishing tests, written into real Git repositories."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import wasmtime

GUESTS = Path(__file__).resolve().parent.parent / "shim" / "guests"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Author",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Author",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def wagi_wat(text: str) -> str:
    """A WAGI module answering `text` (a plain-text CGI response) on every request."""
    body = f"Content-Type: text/plain\n\n{text}\n"
    escaped = body.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len(body.encode())}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


def wagi_wasm(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(wagi_wat(text)))


def spin_toml(name: str, *, publish: str | None = None, extra_tool: str = "", fmt: str | None = None) -> str:
    tool = ""
    if publish is not None:
        tool = f'[application.tool.spindle]\npublish = "{publish}"\nnamespace = "apps"\nreplicas = 1\n'
        tool += f'publish_format = "{fmt}"\n' if fmt else ""
        tool += extra_tool
    return (
        textwrap.dedent(f"""\
        spin_manifest_version = 2

        [application]
        name = "{name}"
        version = "1.0.0"
        authors = ["Ada Author <ada@example.com>"]
        """)
        + tool
        + textwrap.dedent(f"""\

        [[trigger.http]]
        route = "/..."
        component = "{name}"
        executor = {{ type = "wagi" }}

        [[trigger.http]]
        route = "/healthz"
        static_response = {{ status_code = 200, body = "ok\\n" }}

        [component.{name}]
        source = "{name}.wasm"
        files = [{{ source = "static", destination = "/static" }}]
        """)
    )


def write_project(root: Path, name: str, greeting: str, **kwargs: str | None) -> Path:
    """apps/<name>/: spin.toml, <name>.wasm (WAGI saying `greeting`), static/ (one small, one large file)."""
    project = root / "apps" / name
    (project / "static").mkdir(parents=True, exist_ok=True)
    (project / "spin.toml").write_text(spin_toml(name, **kwargs))  # type: ignore[arg-type]
    (project / f"{name}.wasm").write_bytes(wagi_wasm(greeting))
    (project / "static" / "small.txt").write_text("hello\n")
    (project / "static" / "page.html").write_text("<p>" + "x" * 300 + "</p>\n")
    return project


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def commit_all(repo: Path, message: str, *, date: str = "2026-05-01T12:00:00+00:00") -> str:
    git(repo, "add", "-A")
    env_date = ["-c", "commit.gpgsign=false"]
    proc = subprocess.run(
        ["git", *env_date, "commit", "--quiet", "-m", message],
        cwd=repo,
        env={**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return git(repo, "rev-parse", "HEAD")


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    return path
