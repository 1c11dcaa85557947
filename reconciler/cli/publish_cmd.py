"""`spindle publish PROJECT`: push a Spin project as an OCI artifact and print its pinned reference.

    spindle publish apps/hello [--registry REG/REPO] [--tag T] [--format spin|rootfs] [--build]
                    [--username U (--password-stdin | --password-env VAR)] [--docker-config F]
                    [--ca-file F] [--plain-http] [--dry-run] [-o text|json]

The registry defaults to the project's `[application.tool.spindle] publish`, the format to its
`publish_format` (else `spin`). `--dry-run` assembles the artifact and prints its digest without talking
to any registry. Exit codes: 0 published (or already there), 2 usage, project or registry error.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path

import click

from reconciler.cli.options import EXIT_ERROR, EXIT_OK


def _password(stdin: bool, env: str | None) -> str | None:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if env:
        value = os.environ.get(env)
        if value is None:
            raise click.UsageError(f"--password-env: {env} is not set")
        return value
    return None


def _table(spin_toml: Path) -> dict[str, object]:
    try:
        doc = tomllib.loads(spin_toml.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # the project load reports it properly
    table = ((doc.get("application") or {}).get("tool") or {}).get("spindle")
    return table if isinstance(table, dict) else {}


@click.command("publish")
@click.argument("project", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--registry",
    "registry",
    metavar="REG/REPO",
    help="Repository to push to (default: the project's [application.tool.spindle] publish).",
)
@click.option("--tag", help="Also tag the pushed manifest.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["spin", "rootfs"]),
    default=None,
    help="spin: what `spin registry push` makes (default); rootfs: /spin.toml and its files as "
    "tar layers, for containerd.",
)
@click.option("--build", is_flag=True, help="Run each component's build.command first, as `spin build` does.")
@click.option("--username", help="Registry user (else the Docker config's credentials).")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from stdin.")
@click.option("--password-env", metavar="VAR", help="Environment variable holding the registry password.")
@click.option(
    "--docker-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Docker config.json with registry credentials (default: $DOCKER_CONFIG or ~/.docker).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Extra CA certificates (PEM) to trust for the registry.",
)
@click.option("--plain-http", is_flag=True, help="Plain HTTP even for a non-loopback registry.")
@click.option("--dry-run", is_flag=True, help="Assemble and print the digest; push nothing.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def publish(
    project: Path,
    registry: str | None,
    tag: str | None,
    fmt: str | None,
    build: bool,
    username: str | None,
    password_stdin: bool,
    password_env: str | None,
    docker_config: Path | None,
    ca_file: Path | None,
    plain_http: bool,
    dry_run: bool,
    output: str,
) -> None:
    """Publish the Spin project PROJECT (a directory or its spin.toml) as an OCI artifact."""
    from oci.errors import OciError
    from oci.registry import RegistryClient
    from reconciler.publish import gitinfo
    from reconciler.publish.errors import PublishError
    from reconciler.publish.publisher import (
        Request,
        Settings,
        Target,
        archive_from_env,
        publish_many,
        spin_toml_of,
        targets_of,
    )

    spin_toml = spin_toml_of(project)
    if not spin_toml.is_file():
        raise click.UsageError(f"{project}: no spin.toml there")
    table_ref, table_fmt = targets_of(_table(spin_toml))
    where = str(spin_toml)
    ref_text = registry or table_ref
    if not ref_text:
        raise click.UsageError(f"{where} has no [application.tool.spindle] publish; give --registry REG/REPO")
    password = _password(password_stdin, password_env)
    if (username is None) != (password is None):
        raise click.UsageError("give --username with --password-stdin or --password-env (or neither)")
    try:
        target = Target.parse(ref_text, tag=tag, fmt=fmt or table_fmt or "spin", where=where)
    except PublishError as exc:
        raise click.UsageError(str(exc)) from None
    root = gitinfo.repo_root(spin_toml.parent.resolve()) or spin_toml.parent.resolve()
    settings = Settings(dry_run=dry_run, archive=archive_from_env())
    try:
        client = (
            None
            if dry_run
            else RegistryClient(
                username=username,
                password=password,
                docker_config=docker_config,
                ca_file=ca_file,
                force_plain_http=plain_http,
            )
        )
    except OciError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    try:
        (result,) = publish_many(root, [Request(spin_toml, target, build)], settings, client)
    finally:
        if client is not None:
            client.close()
    if isinstance(result, PublishError):
        click.echo(f"error: {result}", err=True)
        sys.exit(EXIT_ERROR)
    if output == "json":
        doc = {
            "project": result.project,
            "reference": result.reference,
            "digest": result.digest,
            "format": result.format,
            "tag": result.tag,
            "commit": result.commit,
            "created": result.created,
            "pushed": result.pushed,
            "bytes_uploaded": result.bytes_uploaded,
            "blobs_uploaded": result.blobs_uploaded,
            "dry_run": dry_run,
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        verb = "assembled" if dry_run else "pushed" if result.pushed else "unchanged"
        commit = f"commit {result.commit[:12]}" if result.commit else "no commit"
        detail = (
            f"{result.blobs_uploaded} blobs, {result.bytes_uploaded} bytes uploaded; "
            if result.pushed
            else ""
        )
        click.echo(f"{verb} {result.reference} ({result.format}; {detail}{commit})")
    sys.exit(EXIT_OK)
