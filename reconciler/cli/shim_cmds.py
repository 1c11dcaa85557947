"""`spindle shim`: run Spin apps on the node runtime (package `shim`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


@click.group()
def shim() -> None:
    """Run Spin apps on the node runtime."""


@shim.command("up")
@click.argument("target_text", metavar="TARGET", required=False, default=".")
@click.option("--listen", default=None, metavar="ADDR",
              help="HOST:PORT to listen on (default 127.0.0.1:3000, or SPIN_HTTP_LISTEN_ADDR).")
@click.option("--runtime-config-file", type=click.Path(path_type=Path), default=None,
              help="runtime-config.toml (default /runtime-config.toml if it exists).")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="Where key-value stores live (default <app>/.spin).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Precompiled artifact cache (default $XDG_CACHE_HOME/spindle-shim/artifacts).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Serving processes (default: number of CPUs).")
@click.option("--request-timeout", type=click.FloatRange(0.01), default=None, metavar="SECONDS",
              help="Per-request deadline; a guest still running then is interrupted (500). Default 30.")
@click.option("--registry-ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Extra CA certificates (PEM) for pulling an oci:// TARGET.")
@click.option("--docker-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Docker config.json with registry credentials for an oci:// TARGET.")
def up(target_text: str, listen: str | None, runtime_config_file: Path | None, state_dir: Path | None,
       cache_dir: Path | None, workers: int | None, request_timeout: float | None,
       registry_ca_file: Path | None, docker_config: Path | None) -> None:
    """Run the app in TARGET in the foreground: a directory holding spin.toml, a spin.toml, or
    oci://REG/REPO@sha256:… (a Spin artifact, pulled into the artifact cache with every digest checked)."""
    from shim.engine import default_cache_dir
    from shim.errors import ShimError
    from shim.runner import RunOptions, configure_logging, serve

    configure_logging()
    if target_text.startswith("oci://"):
        from oci.errors import OciError
        from oci.registry import RegistryClient
        from shim.ociapp import fetch_app

        try:
            with RegistryClient(ca_file=registry_ca_file, docker_config=docker_config) as client:
                target = fetch_app(target_text, cache_dir or default_cache_dir(), client)
        except (ShimError, OciError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
    else:
        target = Path(target_text)
        manifest = target / "spin.toml" if target.is_dir() else target
        if not manifest.is_file():
            raise click.UsageError(f"{target}: no spin.toml there (give an app directory or its spin.toml)")
    if runtime_config_file is not None and not runtime_config_file.exists():
        raise click.UsageError(f"runtime config file {runtime_config_file} does not exist")
    opts = RunOptions(
        target=target,
        listen=listen or os.environ.get("SPIN_HTTP_LISTEN_ADDR") or "127.0.0.1:3000",
        runtime_config=runtime_config_file, state_dir=state_dir, cache_dir=cache_dir,
        workers=workers or os.cpu_count() or 1,
    )
    env = dict(os.environ)
    if request_timeout is not None:
        env["SPINDLE_SHIM_REQUEST_TIMEOUT_MS"] = str(int(request_timeout * 1000))
    try:
        code = serve(opts, env)
    except ShimError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (OSError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    sys.exit(code)
