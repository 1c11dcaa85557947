"""GitSource against real repositories and remotes built with the git CLI."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from spindle_gitfixtures import Remote, git, git_http_server, ssh_signing_key

from reconciler.source import (
    Auth,
    GitSource,
    Ref,
    RefKind,
    RefNotFound,
    SourceConfigError,
    SourceError,
    SourceSpec,
    SourceUnavailable,
    VerificationFailed,
    Verify,
)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    r = Remote(tmp_path / "upstream")
    r.commit({"apps/a/spin.toml": "a = 1\n", "README": "hi\n"}, "first commit")
    r.push()
    return r


def source(remote_url: str, cache: Path, **kw: object) -> GitSource:
    return GitSource(SourceSpec(url=remote_url, **kw), cache)  # type: ignore[arg-type]


def test_branch_fetch_yields_checkout_and_revision(remote: Remote, tmp_path: Path) -> None:
    head = git(remote.work, "rev-parse", "HEAD")
    result = source(remote.url, tmp_path / "cache").fetch()
    assert result.changed
    assert result.revision.sha == head
    assert result.revision.author == "Ada Author <ada@example.com>"
    assert result.revision.message == "first commit"
    assert result.revision.time  # RFC 3339 from the commit
    assert (result.checkout / "apps/a/spin.toml").read_text() == "a = 1\n"
    assert result.ref == "refs/heads/main"


def test_local_path_is_accepted_and_fetched_shallow(remote: Remote, tmp_path: Path) -> None:
    for i in range(3):
        remote.commit({"n": str(i)}, f"commit {i}")
    remote.push()
    result = source(str(remote.bare), tmp_path / "cache").fetch()
    repo = result.checkout
    assert git(repo, "rev-list", "--count", "HEAD") == "1"
    assert (repo / ".git" / "shallow").exists()
    full = source(str(remote.bare), tmp_path / "cache2", shallow=False).fetch()
    assert git(full.checkout, "rev-list", "--count", "HEAD") == "4"


def test_unchanged_remote_skips_the_fetch(remote: Remote, tmp_path: Path) -> None:
    src = source(remote.url, tmp_path / "cache")
    first = src.fetch()
    fetch_head = src.repo_dir / ".git" / "FETCH_HEAD"
    stamp = fetch_head.stat().st_mtime_ns
    again = source(remote.url, tmp_path / "cache").fetch()  # a new process would start like this
    assert not again.changed
    assert again.revision == first.revision
    assert fetch_head.stat().st_mtime_ns == stamp
    sha = remote.commit({"README": "changed\n"}, "second")
    remote.push()
    moved = src.fetch()
    assert moved.changed and moved.revision.sha == sha
    assert (moved.checkout / "README").read_text() == "changed\n"


def test_other_branch(remote: Remote, tmp_path: Path) -> None:
    git(remote.work, "checkout", "--quiet", "-b", "staging")
    sha = remote.commit({"README": "staging\n"}, "on staging")
    remote.push("staging")
    result = source(remote.url, tmp_path / "c", ref=Ref(RefKind.BRANCH, "staging")).fetch()
    assert result.revision.sha == sha
    with pytest.raises(RefNotFound, match="branch nope"):
        source(remote.url, tmp_path / "c2", ref=Ref(RefKind.BRANCH, "nope")).fetch()


@pytest.mark.parametrize("annotated", [False, True])
def test_tag_resolves_to_its_commit(remote: Remote, tmp_path: Path, annotated: bool) -> None:
    tagged = git(remote.work, "rev-parse", "HEAD")
    remote.tag("v1.0.0", annotated=annotated)
    remote.commit({"README": "later\n"}, "after the tag")
    remote.push()
    result = source(remote.url, tmp_path / "c", ref=Ref(RefKind.TAG, "v1.0.0")).fetch()
    assert result.revision.sha == tagged
    assert (result.checkout / "README").read_text() == "hi\n"
    assert result.ref == "refs/tags/v1.0.0"


def test_semver_range_picks_highest_matching_tag(remote: Remote, tmp_path: Path) -> None:
    shas: dict[str, str] = {}
    for tag in ["v1.0.0", "v1.2.0", "v1.3.0-rc.1", "v2.0.0", "latest"]:
        shas[tag] = remote.commit({"VERSION": tag}, f"release {tag}")
        remote.tag(tag, annotated=tag == "v1.2.0")
    remote.push()
    pick = source(remote.url, tmp_path / "a", ref=Ref(RefKind.SEMVER, ">=1.0.0 <2.0.0")).fetch()
    assert pick.revision.sha == shas["v1.2.0"] and pick.ref == "refs/tags/v1.2.0"
    pre = source(remote.url, tmp_path / "b", ref=Ref(RefKind.SEMVER, "^1", include_prerelease=True)).fetch()
    assert pre.revision.sha == shas["v1.3.0-rc.1"]
    with pytest.raises(RefNotFound, match="no tag matches"):
        source(remote.url, tmp_path / "c", ref=Ref(RefKind.SEMVER, "~3.1")).fetch()
    with pytest.raises(SourceConfigError, match="semver"):
        source(remote.url, tmp_path / "d", ref=Ref(RefKind.SEMVER, ">=banana"))


def test_commit_pin(remote: Remote, tmp_path: Path) -> None:
    old = git(remote.work, "rev-parse", "HEAD")
    remote.commit({"README": "new\n"}, "newer")
    remote.push()
    src = source(remote.url, tmp_path / "c", ref=Ref(RefKind.COMMIT, old))
    result = src.fetch()
    assert result.revision.sha == old and (result.checkout / "README").read_text() == "hi\n"
    assert not src.fetch().changed
    short = source(remote.url, tmp_path / "d", ref=Ref(RefKind.COMMIT, old[:10])).fetch()
    assert short.revision.sha == old
    with pytest.raises(RefNotFound):
        source(remote.url, tmp_path / "e", ref=Ref(RefKind.COMMIT, "0" * 40)).fetch()


def test_sub_path(remote: Remote, tmp_path: Path) -> None:
    result = source(remote.url, tmp_path / "c", path="apps/a").fetch()
    assert result.checkout.name == "a" and (result.checkout / "spin.toml").exists()
    with pytest.raises(SourceConfigError, match="does not exist"):
        source(remote.url, tmp_path / "d", path="apps/zzz").fetch()
    with pytest.raises(SourceConfigError, match="inside the repo"):
        source(remote.url, tmp_path / "e", path="../etc")


def test_force_push_is_followed(remote: Remote, tmp_path: Path) -> None:
    src = source(remote.url, tmp_path / "c")
    remote.commit({"README": "doomed\n"}, "doomed commit")
    remote.push()
    doomed = src.fetch().revision.sha
    git(remote.work, "reset", "--quiet", "--hard", "HEAD~1")
    rewritten = remote.commit({"README": "rewritten\n"}, "rewritten history")
    remote.push(force=True)
    result = src.fetch()
    assert result.changed and result.revision.sha == rewritten != doomed
    assert (result.checkout / "README").read_text() == "rewritten\n"


def test_unreachable_remote_keeps_last_good(remote: Remote, tmp_path: Path) -> None:
    src = source(remote.url, tmp_path / "c")
    good = src.fetch()
    shutil.move(remote.bare, tmp_path / "gone.git")
    with pytest.raises(SourceUnavailable) as info:
        src.fetch()
    assert remote.bare.as_uri() in str(info.value)
    assert info.value.last_good is not None
    assert info.value.last_good.revision == good.revision
    assert (info.value.last_good.checkout / "README").read_text() == "hi\n"
    shutil.move(tmp_path / "gone.git", remote.bare)
    assert src.fetch().revision == good.revision


def test_first_fetch_of_unreachable_remote_has_no_last_good(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable) as info:
        source((tmp_path / "nowhere.git").as_uri(), tmp_path / "c").fetch()
    assert info.value.last_good is None
    assert "nowhere.git" in str(info.value)


def test_ssh_signature_verification(remote: Remote, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    trusted, trusted_line = ssh_signing_key(keys, "trusted")
    stranger, _ = ssh_signing_key(keys, "stranger")
    allowed = keys / "allowed_signers"
    allowed.write_text(trusted_line + "\n")
    src = source(remote.url, tmp_path / "c", verify=Verify(allowed_signers=allowed))

    with pytest.raises(VerificationFailed, match="is not signed"):
        src.fetch()  # the fixture's first commit is unsigned

    signed = remote.commit({"README": "signed\n"}, "signed commit", sign_key=trusted)
    remote.push()
    good = src.fetch()
    assert good.revision.sha == signed

    remote.commit({"README": "evil\n"}, "signed by a stranger", sign_key=stranger)
    remote.push()
    with pytest.raises(VerificationFailed, match="not trusted") as info:
        src.fetch()
    # The work tree never moved to the untrusted commit.
    assert info.value.last_good is not None and info.value.last_good.revision.sha == signed
    assert (good.checkout / "README").read_text() == "signed\n"

    remote.commit({"README": "plain\n"}, "unsigned again")
    remote.push()
    with pytest.raises(VerificationFailed, match="is not signed"):
        src.fetch()


def test_https_token_auth_never_leaks(
    remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "s3cr3t-t0ken-value"
    expected = "Basic " + base64.b64encode(f"git:{token}".encode()).decode()
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    with git_http_server(remote.bare.parent, expected) as server:
        url = f"http://127.0.0.1:{server.server_port}/remote.git"
        src = source(url, tmp_path / "c", auth=Auth(token_file=token_file))
        result = src.fetch()
        assert result.revision.sha == git(remote.work, "rev-parse", "HEAD")
        assert expected in server.seen_auth

        monkeypatch.setenv("SPINDLE_TEST_TOKEN", token)
        assert source(url, tmp_path / "env", auth=Auth(token_env="SPINDLE_TEST_TOKEN")).fetch().changed

        # Credentials embedded in the URL are used, then stripped from everything stored.
        embedded = f"http://git:{token}@127.0.0.1:{server.server_port}/remote.git"
        emb = source(embedded, tmp_path / "emb")
        assert emb.fetch().changed
        assert token not in emb.display_url and token not in emb.url

        token_file.write_text("wrong-token\n")
        remote.commit({"README": "moved\n"}, "move")
        remote.push()
        with pytest.raises(SourceUnavailable) as info:
            src.fetch()
        assert "wrong-token" not in str(info.value)
        assert f"127.0.0.1:{server.server_port}/remote.git" in str(info.value)

        with pytest.raises(SourceUnavailable):
            source(url, tmp_path / "anon").fetch()

    for cache in ("c", "env", "emb"):
        for path in (tmp_path / cache).rglob("*"):
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
                assert base64.b64encode(f"git:{token}".encode()) not in path.read_bytes(), path


def test_token_is_refused_over_plain_http_to_other_hosts(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tok")
    src = source("http://git.example.com/r.git", tmp_path / "c", auth=Auth(token_file=token_file))
    with pytest.raises(SourceConfigError, match="plain http"):
        src.fetch()
    missing = source("https://git.example.com/r.git", tmp_path / "d", auth=Auth(token_file=tmp_path / "no"))
    with pytest.raises(SourceConfigError, match="cannot read token file"):
        missing.fetch()


def test_concurrent_fetches_of_one_cache_do_not_collide(remote: Remote, tmp_path: Path) -> None:
    import threading

    results: list[object] = []

    def fetch() -> None:
        try:
            results.append(source(remote.url, tmp_path / "shared").fetch().revision.sha)
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [git(remote.work, "rev-parse", "HEAD")] * 4


def test_broken_cache_is_a_source_error_naming_the_url(remote: Remote, tmp_path: Path) -> None:
    src = source(remote.url, tmp_path / "c")
    good = src.fetch()
    remote.commit({"README": "next\n"}, "next")
    remote.push()
    (src.repo_dir / ".git" / "index.lock").write_text("")  # another git crashed mid-checkout
    with pytest.raises(SourceError) as info:
        src.fetch()
    assert remote.url in str(info.value) and info.value.last_good is not None
    assert info.value.last_good.revision == good.revision


@pytest.mark.skipif(shutil.which("gpg") is None, reason="needs gpg (Debian package gnupg)")
def test_gpg_signature_verification(remote: Remote, tmp_path: Path) -> None:
    import os
    import subprocess

    signer_home, trusted_home, other_home = (tmp_path / n for n in ("signer", "trusted", "other"))
    for home in (signer_home, trusted_home, other_home):
        home.mkdir(mode=0o700)

    def gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
        return subprocess.run(
            ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            env={**os.environ, "GNUPGHOME": str(home)}, input=stdin, capture_output=True, check=True,
        ).stdout

    try:
        gpg(signer_home, "--quick-gen-key", "Signer <signer@example.com>", "ed25519", "sign", "never")
        fpr = next(line.split(":")[9] for line in gpg(signer_home, "--list-keys", "--with-colons")
                   .decode().splitlines() if line.startswith("fpr:"))
        gpg(trusted_home, "--import", stdin=gpg(signer_home, "--export", "--armor", fpr))
        signed_env = {"GNUPGHOME": str(signer_home)}
        git(remote.work, "commit", "--quiet", "--allow-empty", f"-S{fpr}", "-m", "gpg signed", env=signed_env)
        remote.push()
        sha = git(remote.work, "rev-parse", "HEAD")
        good = source(remote.url, tmp_path / "c", verify=Verify(gpg_home=trusted_home)).fetch()
        assert good.revision.sha == sha
        with pytest.raises(VerificationFailed, match="not trusted"):
            source(remote.url, tmp_path / "d", verify=Verify(gpg_home=other_home)).fetch()
        remote.commit({"README": "unsigned\n"}, "unsigned")
        remote.push()
        with pytest.raises(VerificationFailed, match="is not signed"):
            source(remote.url, tmp_path / "c", verify=Verify(gpg_home=trusted_home)).fetch()
    finally:
        for home in (signer_home, trusted_home, other_home):
            subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)},
                           capture_output=True, check=False)


@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="needs openssh-server (sshd)")
def test_ssh_with_key_and_strict_known_hosts(remote: Remote, tmp_path: Path) -> None:
    import getpass

    from spindle_gitfixtures import sshd

    key = tmp_path / "deploy_key"
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with sshd(tmp_path / "sshd", (tmp_path / "deploy_key.pub").read_text().strip()) as (port, host_line):
        url = f"ssh://{getpass.getuser()}@127.0.0.1:{port}{remote.bare}"
        known = tmp_path / "known_hosts"
        known.write_text(host_line + "\n")
        result = source(url, tmp_path / "c", auth=Auth(ssh_key=key, known_hosts=known)).fetch()
        assert result.revision.sha == git(remote.work, "rev-parse", "HEAD")

        # An unknown host key is refused, never added.
        empty = tmp_path / "empty_known_hosts"
        empty.write_text("")
        with pytest.raises(SourceUnavailable, match="Host key verification failed"):
            source(url, tmp_path / "d", auth=Auth(ssh_key=key, known_hosts=empty)).fetch()
        assert empty.read_text() == ""

        # A different host key for the same address is refused too.
        other, _ = ssh_signing_key(tmp_path, "not-the-host")
        wrong = tmp_path / "wrong_known_hosts"
        wrong.write_text(f"[127.0.0.1]:{port} " + " ".join(
            (tmp_path / "not-the-host.pub").read_text().split()[:2]) + "\n")
        with pytest.raises(SourceUnavailable):
            source(url, tmp_path / "e", auth=Auth(ssh_key=key, known_hosts=wrong)).fetch()

        # A key the server does not know is refused.
        with pytest.raises(SourceUnavailable, match=r"127\.0\.0\.1"):
            source(url, tmp_path / "f", auth=Auth(ssh_key=other, known_hosts=known)).fetch()
