"""The release tarball (reproducible bytes, exactly the binary at the top level, a matching .sha256)
and `spindle node build` itself, whose executable is byte-identical to the cached freeze of the
same tree."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from node_build import frozen
from node_release_testlib import EPOCH

from reconciler.cli import cli
from reconciler.node import freeze, release

SHIM = "containerd-shim-spin-v2"


def _members(tarball: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(tarball, "r:gz") as tar:
        return tar.getmembers()


def test_tarball_is_reproducible_and_holds_exactly_the_binary(shim_exe: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    arch = release.host_arch()
    first = release.write_release(shim_exe, tmp_path / "a", arch)
    second = release.write_release(shim_exe, tmp_path / "b", arch)
    assert first.tarball.name == f"{SHIM}-linux-{arch}.tar.gz"
    assert first.tarball.read_bytes() == second.tarball.read_bytes()
    (member,) = _members(first.tarball)
    assert (member.name, member.type, member.mode) == (SHIM, tarfile.REGTYPE, 0o755)
    assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
    assert member.mtime == EPOCH
    with tarfile.open(first.tarball, "r:gz") as tar:
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == shim_exe.read_bytes()
    # the gzip header carries no time and no name either
    assert first.tarball.read_bytes()[4:8] == b"\0\0\0\0"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert release.tarball_bytes(shim_exe) != first.tarball.read_bytes()  # the epoch is the only input


def test_sha256_file_matches_and_sha256sum_checks_it(shim_exe: Path, tmp_path: Path) -> None:
    made = release.write_release(shim_exe, tmp_path, release.host_arch(), epoch=EPOCH)
    digest = hashlib.sha256(made.tarball.read_bytes()).hexdigest()
    assert made.sha256 == digest
    assert made.sha256_file.read_text() == f"{digest}  {made.tarball.name}\n"
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", made.sha256_file.name], cwd=tmp_path, capture_output=True,
                               text=True, check=False)
        assert check.returncode == 0 and check.stdout.strip().endswith("OK"), check.stdout + check.stderr


def test_untarred_like_rcm_downloader_the_binary_runs(shim_exe: Path, tmp_path: Path) -> None:
    """RCM's downloader: `tar -xzf` into a directory, then copy containerd-shim-<Shim name>."""
    made = release.write_release(shim_exe, tmp_path / "rel", release.host_arch(), epoch=EPOCH)
    out = tmp_path / "untarred"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(made.tarball), "-C", str(out)], check=True)
    assert sorted(p.name for p in out.iterdir()) == [SHIM]
    version = subprocess.run(["env", "-i", str(out / SHIM), "-v"], cwd=tmp_path, capture_output=True,
                             text=True, check=False)
    assert version.returncode == 0 and "containerd-shim-spin-v2 (spindle)" in version.stdout


@pytest.mark.parametrize("given, expected", [(None, "host"), ("amd64", "x86_64"), ("x86_64", "x86_64"),
                                             ("arm64", "aarch64"), ("aarch64", "aarch64")])
def test_arch_names(given: str | None, expected: str) -> None:
    host = release.host_arch()
    if expected not in ("host", host):
        with pytest.raises(ValueError, match="cannot build for"):
            release.normalize_arch(given)
    else:
        assert release.normalize_arch(given) == host


def test_unknown_arch_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["node", "build", "--out", "/nonexistent/x", "--arch", "mips"])
    assert result.exit_code == 2 and "unknown architecture 'mips'" in result.output


@pytest.mark.slow
@pytest.mark.timeout(900)  # two freezes when the cache is cold (session build + this one)
def test_spindle_node_build_rebuilds_the_same_executable(shim_exe: Path, tmp_path: Path) -> None:
    """`spindle node build` from this tree gives byte-identical bytes to the cached freeze (another
    work directory, another time): the executable itself is reproducible on one machine image."""
    before = freeze.fingerprint((freeze.SHIM,))
    result = CliRunner().invoke(cli, ["node", "build", "--out", str(tmp_path), "--shim-only"],
                                env={"SOURCE_DATE_EPOCH": "0"})
    assert result.exit_code == 0, result.output
    if freeze.fingerprint((freeze.SHIM,)) != before:
        pytest.skip("the source tree changed during the build")
    # the session's build, or (the tree changed since the session began) one of the tree as it is
    reference = shim_exe if before[:16] in shim_exe.parent.name else frozen(freeze.SHIM)
    built = tmp_path / SHIM
    assert built.read_bytes() == reference.read_bytes()
    tarball = tmp_path / release.tarball_name(release.host_arch())
    sha = (tmp_path / (tarball.name + ".sha256")).read_text().split()[0]
    assert f"sha256 {sha}" in result.output
    assert [m.name for m in _members(tarball)] == [SHIM]
    assert not (tmp_path / freeze.INSTALLER.name).exists()
