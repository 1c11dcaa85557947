"""`spindle node build | image | push`: the runtime for nodes without Python (`reconciler.node`).

    spindle node build --out DIR [--arch ARCH] [--shim-only]
    spindle node image --out FILE.tar [--tag REF] [--from DIR]
    spindle node push REGISTRY/REPO:TAG [--from DIR] [--username U --password-stdin]
                      [--docker-config F] [--ca-file F] [--plain-http]

`image` and `push` freeze both programs first unless `--from` names a `spindle node build`
directory. Exit codes: 0 done; 1 the build failed (PyInstaller, the launcher or the image could
not be made from this tree); 2 usage, a missing build tool, I/O or registry errors.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.node.errors import MissingTool, NodeBuildError

if TYPE_CHECKING:
    from reconciler.node.image import NodeImage

EXIT_FAILED, EXIT_ERROR = 1, 2


class Failed(click.ClickException):
    exit_code = EXIT_FAILED


class Error(click.ClickException):
    exit_code = EXIT_ERROR


def _progress() -> Callable[[str], None]:
    start = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - start:5.1f}s] {message}", err=True)

    return say


@contextmanager
def _errors() -> Iterator[None]:
    """Build and registry errors as exit codes 1 and 2."""
    from oci.errors import OciError

    try:
        yield
    except MissingTool as exc:
        raise Error(str(exc)) from None
    except NodeBuildError as exc:
        raise Failed(str(exc)) from None
    except OciError as exc:
        raise Error(str(exc)) from None
    except ValueError as exc:  # an architecture this machine cannot build
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise Error(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None


@click.group()
def node() -> None:
    """Build the node runtime: the frozen shim, its release tarball and the installer image."""


@node.command("build")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the executables, the tarball and its .sha256.")
@click.option("--arch", default=None, metavar="ARCH",
              help="amd64/x86_64 or arm64/aarch64; must be this machine's (no cross builds).")
@click.option("--shim-only", is_flag=True, help="Skip the installer (faster; `image` and `push` need it).")
def build_command(out: Path, arch: str | None, shim_only: bool) -> None:
    """Freeze containerd-shim-spin-v2 (and spindle-node-installer) into single executables and write
    containerd-shim-spin-v2-linux-<arch>.tar.gz and its .sha256 into OUT."""
    from reconciler.node import build

    say = _progress()
    with _errors():
        result = build.build(out, arch=arch, installer=not shim_only, progress=say)
    assert result.release is not None
    for path in (result.shim, result.installer, result.release.tarball, result.release.sha256_file):
        if path is not None:
            click.echo(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    click.echo(f"sha256 {result.release.sha256}")


def _node_image(from_dir: Path | None, say: Callable[[str], None]) -> NodeImage:
    from reconciler.node import build, image

    with tempfile.TemporaryDirectory(prefix="spindle-node-") as tmp:
        if from_dir is not None:
            made = build.existing(from_dir)
            say(f"building the image from {from_dir}")
        else:
            made = build.build(Path(tmp), progress=say)
            say("building the image")
        assert made.installer is not None and made.release is not None
        return image.build_node_image(made.installer, made.shim, tarball=made.release.tarball)


_from_opt = click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                         help="Use the executables a `spindle node build --out DIR` wrote (default: build).")


@node.command("image")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="OCI image layout tar to write (`ctr images import` takes it).")
@click.option("--tag", default=None, metavar="REF",
              help="Image name in the layout (default spindle-node-installer:<version>).")
@_from_opt
def image_command(out: Path, tag: str | None, from_dir: Path | None) -> None:
    """Build the node-installer image (no Docker) and write it as an OCI layout tar."""
    from oci.layout import write_layout_tar
    from reconciler.node import image

    say = _progress()
    with _errors():
        built = _node_image(from_dir, say)
        reference = tag or image.default_tag()
        write_layout_tar(built.image, out, reference)
    click.echo(f"{out}  {reference}@{built.image.digest}")


@node.command("push")
@click.argument("reference", metavar="REGISTRY/REPO:TAG")
@_from_opt
@click.option("--username", "-u", default=None, help="Registry user (with --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password (or token) from stdin.")
@click.option("--docker-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Docker config.json with credentials (default $DOCKER_CONFIG or ~/.docker/config.json).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Extra CA certificates (PEM) to trust for the registry's TLS.")
@click.option("--plain-http", is_flag=True,
              help="Plain HTTP (a local registry on 127.0.0.1; loopback also falls back to it by itself).")
def push_command(reference: str, from_dir: Path | None, username: str | None, password_stdin: bool,
                 docker_config: Path | None, ca_file: Path | None, plain_http: bool) -> None:
    """Build the node-installer image and push it with the OCI distribution API (blobs the
    registry has are skipped)."""
    from oci.errors import InvalidReference
    from oci.reference import Reference
    from oci.registry import RegistryClient
    from oci.transport import is_loopback

    if password_stdin and not username:
        raise click.UsageError("--password-stdin needs --username")
    if username and not password_stdin:
        raise click.UsageError("--username needs --password-stdin (the password is never an argument)")
    try:
        ref = Reference.parse(reference)
    except InvalidReference as exc:
        raise click.BadParameter(str(exc), param_hint="REGISTRY/REPO:TAG") from None
    password = sys.stdin.read().rstrip("\r\n") if password_stdin else None
    if password_stdin and not password:
        raise click.UsageError("--password-stdin read an empty password")
    if plain_http and not is_loopback(ref.registry):
        click.echo(f"warning: plain HTTP to {ref.registry}: credentials and bytes travel unencrypted",
                   err=True)
    say = _progress()
    with _errors():
        built = _node_image(from_dir, say)
        say(f"pushing {ref}")
        client = RegistryClient(username=username, password=password, docker_config=docker_config,
                                ca_file=ca_file, force_plain_http=plain_http)
        try:
            result = client.push_image(built.image, ref)
        finally:
            client.close()
    click.echo(f"pushed {ref}@{result.digest}: {result.blobs_uploaded} blob(s) uploaded "
               f"({result.bytes_uploaded / 1e6:.1f} MB), {result.blobs_skipped} already there, "
               f"{result.blobs_mounted} mounted")
    click.echo(f"installer Jobs: SPINDLE_NODE_INSTALLER_IMAGE={ref.name}@{result.digest}")
    plain = plain_http or is_loopback(ref.registry)
    click.echo(f"release tarball (a Shim's location, sha256 {built.tarball_sha256}): "
               f"{built.tarball_url(ref, plain_http=plain)}")
