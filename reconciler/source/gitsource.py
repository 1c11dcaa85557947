"""Fetch one Git source into a cache directory and check out the wanted revision.

Flow per `fetch()`: `git ls-remote` → resolve the ref (branch, tag, semver range, commit) → stop
here if the resolved sha is the one already checked out → shallow `git fetch` of just that ref with a
forced refspec (so rewritten history is followed) → verify the signature if asked → check out
detached and clean. The work tree only moves after the new head is fetched and verified, so on any
failure it still holds the last good revision, which the raised error carries.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import git

from reconciler.changeset import Revision
from reconciler.source import auth as authmod
from reconciler.source.errors import (
    RefNotFound,
    SourceConfigError,
    SourceError,
    SourceUnavailable,
    VerificationFailed,
)
from reconciler.source.model import FetchResult, RefKind, SourceSpec
from reconciler.source.semver import SemverError, highest_match

_STATE_FILE = "spindle-source.json"
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
# git's advice after a failed remote command; the lines before it say what went wrong.
_BOILERPLATE = frozenset(
    {"Please make sure you have the correct access rights", "and the repository exists."}
)


class _GitFailed(Exception):
    def __init__(self, stderr: str, status: int | None) -> None:
        super().__init__(stderr)
        self.stderr = stderr
        self.status = status


def cache_key(url: str) -> str:
    """A directory name for a source: readable tail of the URL plus a hash of the whole of it."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1]).strip("-.") or "repo"
    return f"{tail[:40]}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


class GitSource:
    def __init__(self, spec: SourceSpec, cache_root: Path) -> None:
        url, user, password = authmod.split_credentials(authmod.normalise_url(spec.url))
        self.spec = spec
        self.url = url  # never holds credentials
        self.display_url = authmod.redact(url)
        self._url_password = password
        if user and password and spec.auth.username == "git":
            spec = dataclasses.replace(spec, auth=dataclasses.replace(spec.auth, username=user))
            self.spec = spec
        self.dir = cache_root / cache_key(url)
        self.repo_dir = self.dir / "repo"
        self._secrets: tuple[str, ...] = ()
        self._env: dict[str, str] = {}
        self._validate_spec()

    # -- public -------------------------------------------------------------------------------

    def last_good(self) -> FetchResult | None:
        """The revision currently checked out, if a previous fetch completed."""
        try:
            state = json.loads((self.dir / _STATE_FILE).read_text(encoding="utf-8"))
            head = self._run("rev-parse", "HEAD", cwd=self.repo_dir).strip()
        except (OSError, ValueError, _GitFailed, SourceError):
            return None
        if state.get("sha") != head:
            return None
        try:
            checkout = self._checkout_path(head)
        except SourceError:
            return None
        rev = Revision(**state["revision"])
        return FetchResult(checkout=checkout, revision=rev, changed=False, ref=state.get("ref", ""))

    def fetch(self) -> FetchResult:
        self.dir.mkdir(parents=True, exist_ok=True)
        # One fetch per cache at a time, across processes (`spindle apply` next to the loop).
        with (self.dir / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            last = self.last_good()
            try:
                self._prepare_credentials()
                return self._fetch(last)
            except SourceError as exc:
                exc.last_good = last
                raise
            except _GitFailed as exc:  # a local git step failed: the cache, not the remote
                raise SourceError(
                    self.display_url, f"git failed in cache {self.repo_dir}: {exc.stderr}", last_good=last
                ) from None

    # -- steps --------------------------------------------------------------------------------

    def _validate_spec(self) -> None:
        ref = self.spec.ref
        if ref.kind is RefKind.SEMVER:
            try:
                highest_match([], ref.value)
            except SemverError as exc:
                raise SourceConfigError(self.display_url, str(exc)) from None
        if ref.kind is RefKind.COMMIT and not _SHA.match(ref.value):
            raise SourceConfigError(self.display_url, f"commit {ref.value!r} is not a hex sha")
        sub = PurePosixPath(self.spec.path)
        if sub.is_absolute() or ".." in sub.parts:
            raise SourceConfigError(
                self.display_url, f"sub-path {self.spec.path!r} must stay inside the repo"
            )

    def _prepare_credentials(self) -> None:
        token = authmod.read_token(self.spec.auth, self.display_url) or self._url_password
        self._env = authmod.git_env(self.url, self.spec.auth, token)
        self._secrets = authmod.secrets_of(self.spec.auth, token)

    def _fetch(self, last: FetchResult | None) -> FetchResult:
        ref = self.spec.ref
        if ref.kind is RefKind.COMMIT:
            if last is not None and last.revision.sha.startswith(ref.value):
                self._verify(last.revision.sha)
                return last
            self._ensure_repo()
            sha = self._fetch_commit(ref.value)
            return self._finish(sha, ref.value)
        refs = self._ls_remote()
        remote_ref, sha = self._resolve(refs)
        if last is not None and last.revision.sha == sha:
            self._verify(sha)
            return dataclasses.replace(last, ref=remote_ref)
        self._ensure_repo()
        is_tag = remote_ref.startswith("refs/tags/")
        local = remote_ref if is_tag else f"refs/remotes/origin/{remote_ref.removeprefix('refs/heads/')}"
        depth = ["--depth", "1"] if self.spec.shallow else []
        if not self.spec.shallow and (self.repo_dir / ".git" / "shallow").exists():
            depth = ["--unshallow"]  # full history wanted (publishing dates projects by their last change)
        self._git_remote("fetch", "--no-tags", "--prune", *depth, self.url, f"+{remote_ref}:{local}")
        fetched = self._run("rev-parse", f"{local}^{{commit}}", cwd=self.repo_dir).strip()
        if fetched != sha:  # the ref moved between ls-remote and fetch: take what we fetched
            sha = fetched
        return self._finish(sha, remote_ref)

    def _finish(self, sha: str, ref: str) -> FetchResult:
        self._verify(sha)
        self._run("checkout", "--quiet", "--force", "--detach", sha, cwd=self.repo_dir)
        self._run("clean", "-ffdxq", cwd=self.repo_dir)
        checkout = self._checkout_path(sha)
        revision = self._revision(sha)
        state = {"sha": sha, "ref": ref, "url": self.display_url, "revision": dataclasses.asdict(revision)}
        tmp = self.dir / (_STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(self.dir / _STATE_FILE)
        return FetchResult(checkout=checkout, revision=revision, changed=True, ref=ref)

    def _ls_remote(self) -> dict[str, str]:
        self.dir.mkdir(parents=True, exist_ok=True)
        out = self._git_remote("ls-remote", "--heads", "--tags", self.url, cwd=self.dir)
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name.endswith("^{}"):  # peeled annotated tag: the commit it points at wins
                refs[name[:-3]] = sha
            else:
                refs.setdefault(name, sha)
        return refs

    def _resolve(self, refs: dict[str, str]) -> tuple[str, str]:
        ref = self.spec.ref
        if ref.kind is RefKind.BRANCH:
            name = f"refs/heads/{ref.value}"
        elif ref.kind is RefKind.TAG:
            name = f"refs/tags/{ref.value}"
        else:
            tags = [r[10:] for r in refs if r.startswith("refs/tags/")]
            best = highest_match(tags, ref.value, include_prerelease=ref.include_prerelease)
            if best is None:
                raise RefNotFound(self.display_url, f"no tag matches semver range {ref.value!r}")
            name = f"refs/tags/{best[0]}"
        if name not in refs:
            raise RefNotFound(self.display_url, f"{ref} not found on the remote")
        return name, refs[name]

    def _fetch_commit(self, wanted: str) -> str:
        depth = ["--depth", "1"] if self.spec.shallow else []
        try:
            if len(wanted) == 40:
                self._git_remote("fetch", "--no-tags", *depth, self.url, wanted)
                return self._run("rev-parse", f"{wanted}^{{commit}}", cwd=self.repo_dir).strip()
        except SourceUnavailable:
            pass  # servers may refuse a sha in `want`; fall back to all branches below
        unshallow = ["--unshallow"] if (self.repo_dir / ".git" / "shallow").exists() else []
        self._git_remote("fetch", "--no-tags", *unshallow, self.url, "+refs/heads/*:refs/remotes/origin/*")
        try:
            out = self._run("rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}", cwd=self.repo_dir)
            return out.strip()
        except _GitFailed:
            raise RefNotFound(self.display_url, f"commit {wanted} not found on the remote") from None

    def _verify(self, sha: str) -> None:
        verify = self.spec.verify
        if not verify.enabled:
            return
        args: list[str] = []
        env: dict[str, str] = {}
        if verify.allowed_signers is not None:
            args += ["-c", f"gpg.ssh.allowedSignersFile={verify.allowed_signers}"]
        if verify.gpg_home is not None:
            env["GNUPGHOME"] = str(verify.gpg_home)
        try:
            self._run(*args, "verify-commit", "--raw", sha, cwd=self.repo_dir, env=env)
        except _GitFailed as exc:
            detail = exc.stderr.strip().splitlines()
            why = "is not signed" if not detail else f"signature not trusted ({detail[-1][:200]})"
            raise VerificationFailed(self.display_url, f"commit {sha[:12]} {why}") from None

    # -- helpers ------------------------------------------------------------------------------

    def _ensure_repo(self) -> None:
        if (self.repo_dir / ".git").is_dir():
            return
        self.repo_dir.mkdir(parents=True, exist_ok=True)
        self._run("init", "--quiet", str(self.repo_dir), cwd=self.dir)
        # The remote is recorded for humans only, and without credentials.
        self._run("remote", "add", "origin", self.url, cwd=self.repo_dir)

    def _checkout_path(self, sha: str) -> Path:
        path = (self.repo_dir / self.spec.path).resolve() if self.spec.path else self.repo_dir
        if not path.is_dir():
            raise SourceConfigError(
                self.display_url, f"sub-path {self.spec.path!r} does not exist at commit {sha[:12]}"
            )
        return path

    def _revision(self, sha: str) -> Revision:
        commit = git.Repo(self.repo_dir).commit(sha)
        author = f"{commit.author.name} <{commit.author.email}>"
        message = commit.message if isinstance(commit.message, str) else commit.message.decode()
        return Revision(
            sha=sha, author=author, time=commit.committed_datetime.isoformat(), message=message.strip()
        )

    def _git_remote(self, *args: str, cwd: Path | None = None) -> str:
        try:
            return self._run(*args, cwd=cwd or self.repo_dir, env=self._env)
        except _GitFailed as exc:
            lines = [ln.strip() for ln in exc.stderr.splitlines()]
            lines = [ln for ln in lines if ln and ln not in _BOILERPLATE]
            why = "; ".join(lines)[:500] if lines else f"git {args[0]} exited {exc.status}"
            raise SourceUnavailable(self.display_url, f"git {args[0]} failed: {why}") from None

    def _run(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        cmd = git.Git(str(cwd))
        try:
            out: Any = cmd.execute(
                ["git", *args],
                env=env,
                kill_after_timeout=self.spec.timeout,
                strip_newline_in_stdout=False,
            )
        except git.GitCommandError as exc:
            stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr)
            stderr = stderr.strip().removeprefix("stderr: ").strip("'")
            raise _GitFailed(authmod.redact(stderr, *self._secrets), exc.status if isinstance(
                exc.status, int) else None) from None
        except OSError as exc:  # git missing, cwd gone
            raise SourceUnavailable(self.display_url, f"cannot run git: {exc}") from None
        return str(out)
