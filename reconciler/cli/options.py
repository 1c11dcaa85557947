"""What `spindle diff`, `spindle apply` and `spindle reconcile` share: their options, each defined
once as a click decorator that hands the command one dataclass, and the functions that resolve
them (SOURCE into a fetch function, the cluster options into a connected target, the rest into
`engine.Options`), the exit code and the progress shown on a terminal.

SOURCE is a Git URL (https, ssh, scp-like `git@host:path`, file) fetched through
`reconciler.source` into the state directory's cache, or a local directory. A directory is
rendered as it is on disk (its Git HEAD, if any, is the revision) unless `--ref` is given; then it
is fetched as a Git repository, like a URL. Credentials and signature checks need Git, so they are
refused for a directory rendered as it is rather than silently ignored.

Errors: bad option values are `click.UsageError`/`click.BadParameter`; a source that cannot be
fetched or a cluster that cannot be reached is `SetupError`. All three exit 2, like `kubectl diff`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler.changeset import Action, ReconcileRecord, Revision

if TYPE_CHECKING:
    from reconciler.engine import Options
    from reconciler.kube.target import Target
    from reconciler.source import FetchResult, Ref

EXIT_OK, EXIT_DRIFT, EXIT_ERROR = 0, 1, 2
EXIT_INVALID = EXIT_DRIFT  # findings: invalid input is reported like drift

# A scheme (`https://`, `file://`, ...) or scp-like `user@host:path`: anything else is a directory.
_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[^/\s]+@[^/\s]+:)", re.IGNORECASE)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


class SetupError(click.ClickException):
    """The source could not be fetched or the cluster reached: nothing was reconciled."""

    exit_code = EXIT_ERROR


# -- durations ---------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """Seconds in `90`, `30s`, `5m`, `1h30m`, `500ms`, `7d`, `1w`."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or _DURATION.sub("", text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    return sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(text))


class Duration(click.ParamType[float]):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


# -- bundling options into one dataclass -------------------------------------------------------


def _bundle(cls: type[Any], dest: str, options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """A decorator adding `options` to a command and passing their values as one `cls` in `dest`.

    Each option's destination must be a field of `cls`."""
    names = [f.name for f in dataclasses.fields(cls)]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            kwargs[dest] = cls(**{name: kwargs.pop(name) for name in names})
            return fn(*args, **kwargs)

        for option in reversed(options):  # so `--help` lists them in the order written here
            command = option(command)
        return command

    return decorate


_FILE = click.Path(dir_okay=False, path_type=Path)


@dataclass(frozen=True)
class SourceArgs:
    ref: str | None = None
    path: str | None = None
    name: str | None = None
    include_prerelease: bool = False
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    token_file: Path | None = None
    token_env: str | None = None
    username: str = "git"
    verify_allowed_signers: Path | None = None
    verify_gpg_home: Path | None = None

    @property
    def needs_git(self) -> list[str]:
        """The options given that only a Git fetch can honour."""
        given = {
            "--ssh-key": self.ssh_key, "--known-hosts": self.known_hosts, "--token-file": self.token_file,
            "--token-env": self.token_env, "--verify-allowed-signers": self.verify_allowed_signers,
            "--verify-gpg-home": self.verify_gpg_home,
        }
        return [flag for flag, value in given.items() if value is not None]


source_options = _bundle(SourceArgs, "source_args", [
    click.option("--ref", help="Git ref: branch:NAME (default branch:main), tag:NAME, semver:RANGE or "
                 "commit:SHA; a bare NAME is a branch. With a local directory, fetch it as Git."),
    click.option("--path", "path", help="Sub-path of the source to render."),
    click.option("--name", "name", help="Source name (owner label, inventory, history); "
                 "default: the directory or repository name."),
    click.option("--include-prerelease", is_flag=True, help="Let a semver range match pre-release tags."),
    click.option("--ssh-key", type=_FILE, help="SSH private key for ssh:// and git@host: URLs."),
    click.option("--known-hosts", type=_FILE, help="SSH known_hosts file (host keys are always checked "
                 "strictly)."),
    click.option("--token-file", type=_FILE, help="File holding an HTTPS token."),
    click.option("--token-env", metavar="VAR", help="Environment variable holding an HTTPS token."),
    click.option("--username", default="git", show_default=True, help="HTTPS user sent with the token."),
    click.option("--verify-allowed-signers", type=_FILE,
                 help="Refuse a head commit not SSH-signed by a key in this allowed_signers file."),
    click.option("--verify-gpg-home", type=click.Path(file_okay=False, path_type=Path),
                 help="Refuse a head commit not GPG-signed by a key in this GNUPGHOME."),
])


@dataclass(frozen=True)
class ClusterArgs:
    kubeconfig: str | None = None
    context: str | None = None


cluster_options = _bundle(ClusterArgs, "cluster_args", [
    click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig file."),
    click.option("--context", help="Kubeconfig context (default: the current one)."),
])


@dataclass(frozen=True)
class EngineArgs:
    mode: str = "render"
    timeout: float = 60.0
    concurrency: int = 8


engine_options = _bundle(EngineArgs, "engine_args", [
    click.option("--mode", type=click.Choice(["render", "operator"]), default="render", show_default=True,
                 help="render: spindle renders SpinApps; operator: apply SpinApps for an in-cluster "
                 "spin-operator."),
    click.option("--timeout", type=float, default=60.0, show_default=True,
                 help="Seconds to wait for health."),
    click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
                 help="Parallel dry-runs."),
])


@dataclass(frozen=True)
class ApplyArgs:
    detect_only: bool = False
    prune: bool = True
    force: bool = False
    allow_empty: bool = False
    history: Path | None = None
    lock_timeout: float = 300.0
    no_wait: bool = False

    def takes_lock(self, *, dry_run: bool) -> bool:
        """Whether the run changes the cluster, so holds the source's Lease (`reconciler.lease`)."""
        return not (dry_run or self.detect_only)


apply_options = _bundle(ApplyArgs, "apply_args", [
    click.option("--detect-only", is_flag=True,
                 help="Report drift and change nothing (a single run exits 1 on drift)."),
    click.option("--prune/--no-prune", default=True, show_default=True, help="Delete objects that left Git."),
    click.option("--force", is_flag=True, help="Recreate objects whose immutable fields changed."),
    click.option("--allow-empty", is_flag=True, help="Allow an empty desired set (prunes everything)."),
    click.option("--history", type=_FILE, help="History database (default: in the state directory)."),
    click.option("--lock-timeout", type=Duration(), default="5m", show_default=True,
                 help="How long to wait while another run holds this source's Lease."),
    click.option("--no-wait", is_flag=True,
                 help="Exit 2 at once when another run holds this source's Lease."),
])


@dataclass(frozen=True)
class PublishArgs:
    publish: bool = True
    registry_ca_file: Path | None = None
    docker_config: Path | None = None
    registry_plain_http: bool = False


publish_options = _bundle(PublishArgs, "publish_args", [
    click.option("--publish/--no-publish", default=True, show_default=True,
                 help="Push Spin projects whose [application.tool.spindle] has `publish` and pin their "
                 "SpinApps to the digest (diff and dry runs only compute the digest)."),
    click.option("--registry-ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Extra CA certificates (PEM) for the registries projects publish to."),
    click.option("--docker-config", type=_FILE,
                 help="Docker config.json with registry credentials (default: $DOCKER_CONFIG or ~/.docker)."),
    click.option("--registry-plain-http", is_flag=True,
                 help="Plain HTTP for every registry (loopback registries fall back to it anyway)."),
])


def _notify_specs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from reconciler.notify import NotifyError, parse_spec

    for spec in value:
        try:
            parse_spec(spec)
        except NotifyError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


@dataclass(frozen=True)
class NotifyArgs:
    notify: tuple[str, ...] = ()
    notify_link: str = ""


notify_options = _bundle(NotifyArgs, "notify_args", [
    click.option("--notify", multiple=True, metavar="SPEC", callback=_notify_specs,
                 help="Post each run's outcome (repeatable): URL (signed JSON event), slack:URL, "
                 "github:OWNER/REPO or gitlab:PROJECT (commit statuses); options after commas, e.g. "
                 "github:o/r,token-file=F,api=URL or URL,secret-env=VAR."),
    click.option("--notify-link", default="", metavar="URL",
                 help="Link target of notifications and commit statuses (e.g. the CI job)."),
])


def notifier(args: NotifyArgs | None) -> Any:
    """A `reconciler.notify.Notifier` for the given specs, or None without any."""
    if args is None or not args.notify:
        return None
    from reconciler.notify import Notifier, parse_spec
    from reconciler.statedir import state_dir

    return Notifier([parse_spec(s) for s in args.notify], link=args.notify_link,
                    memory=state_dir() / "notify-sent.json")


# -- resolving ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    name: str
    fetch: Callable[[], FetchResult]  # raises SourceError (which carries the last good checkout)
    render_path: str | None  # sub-path the renderer narrows to; None when the Git fetch already did


def parse_ref(text: str | None, *, include_prerelease: bool = False) -> Ref:
    """`branch:NAME`, `tag:NAME`, `semver:RANGE`, `commit:SHA`, or a bare branch NAME."""
    from reconciler.source import Ref, RefKind

    if not text:
        return Ref(include_prerelease=include_prerelease)
    kind, sep, value = text.partition(":")
    if not sep:
        return Ref(RefKind.BRANCH, text, include_prerelease)
    kinds = [k.value for k in RefKind]
    if kind not in kinds:
        raise click.BadParameter(f"{text!r}: the kind must be one of {', '.join(kinds)}", param_hint="--ref")
    if not value:
        raise click.BadParameter(f"{text!r} names no {kind}", param_hint="--ref")
    return Ref(RefKind(kind), value, include_prerelease)


def default_name(source: str) -> str:
    """The repository name of a URL (`…/shop.git` → `shop`) or of a path (`.` → its directory)."""
    if _URL.match(source):
        tail = source.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    else:
        tail = Path(source).expanduser().resolve().name
    return re.sub(r"\.git$", "", tail) or "source"


def open_source(
    source: str, args: SourceArgs, *, cache: Path | None = None, full_history: bool = False
) -> Source:
    """SOURCE and its options as a fetch function; bad options raise click.UsageError.

    `full_history` fetches a Git source with its history instead of shallowly: publishing dates each
    project by the last commit that changed it, which a shallow clone cannot tell."""
    local = Path(source).expanduser()
    if not _URL.match(source) and not local.is_dir():  # a mistyped path is not a Git remote
        problem = "is not a directory" if local.exists() else "no such directory"
        raise SetupError(f"source {source}: {problem} (a Git source is a URL: https://, ssh://, "
                         "file:// or git@host:path)")
    if not _URL.match(source) and args.ref is None:
        if args.needs_git:
            flags = args.needs_git
            raise click.UsageError(
                f"{', '.join(flags)} {'needs' if len(flags) == 1 else 'need'} a Git fetch, but {source} "
                "is a directory rendered as it is; add --ref (e.g. --ref branch:main) to fetch it as Git"
            )
        directory = local.resolve()
        if args.path and not (directory / args.path).is_dir():
            raise click.BadParameter(f"{args.path!r} is not a directory in {directory}", param_hint="--path")
        return Source(args.name or directory.name, functools.partial(_read_directory, directory), args.path)

    from reconciler.source import Auth, GitSource, SourceConfigError, SourceSpec, Verify
    from reconciler.statedir import state_dir

    spec = SourceSpec(
        url=source,
        ref=parse_ref(args.ref, include_prerelease=args.include_prerelease),
        path=args.path or "",
        auth=Auth(ssh_key=args.ssh_key, known_hosts=args.known_hosts, token_file=args.token_file,
                  token_env=args.token_env, username=args.username),
        verify=Verify(allowed_signers=args.verify_allowed_signers, gpg_home=args.verify_gpg_home),
        shallow=not full_history,
    )
    try:
        git_source = GitSource(spec, cache or state_dir() / "git")
    except SourceConfigError as exc:
        raise click.UsageError(str(exc)) from None
    return Source(args.name or default_name(source), git_source.fetch, None)


def _read_directory(path: Path) -> FetchResult:
    """A directory as it is; the revision is its Git HEAD (sha "" when it has none)."""
    from reconciler.source import FetchResult

    return FetchResult(checkout=path, revision=head_revision(path) or Revision(sha=""), changed=True)


def head_revision(path: Path) -> Revision | None:
    """The HEAD commit of the repository holding `path`, if there is one."""
    import git

    try:
        commit = git.Repo(path, search_parent_directories=True).head.commit
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None  # not a repository, or one without commits: a plain directory has no revision
    message = commit.message if isinstance(commit.message, str) else commit.message.decode()
    return Revision(
        sha=commit.hexsha, author=f"{commit.author.name} <{commit.author.email}>",
        time=commit.committed_datetime.isoformat(), message=message.strip(),
    )


def known_revision(revision: Revision | None) -> Revision | None:
    """None for a directory without commits (its fetch reports sha "")."""
    return revision if revision is not None and revision.sha else None


def fetch_once(source: str, src: Source) -> FetchResult:
    from reconciler.source import SourceError

    try:
        return src.fetch()
    except SourceError as exc:
        raise SetupError(str(exc)) from None
    except OSError as exc:  # a directory that vanished or cannot be read
        raise SetupError(f"source {source}: {exc}") from None


def connect(args: ClusterArgs, *, timeout: float, share_embedded: bool = False) -> Target:
    """The target cluster; `share_embedded` (long-running commands) publishes an embedded cluster
    this process starts for other commands and kubectl."""
    from reconciler.kube import errors, target

    try:
        return target.connect(
            kubeconfig=args.kubeconfig, context=args.context,
            notice=lambda message: click.echo(message, err=True), timeout=max(timeout, 30.0),
            failure_budget=max(timeout, 1.0),
            share_embedded=share_embedded,
        )
    except errors.KubeError as exc:
        raise SetupError(str(exc)) from None


def engine_settings(
    engine_args: EngineArgs,
    src: Source,
    apply_args: ApplyArgs | None = None,
    *,
    dry_run: bool = False,
    publish_args: PublishArgs | None = None,
) -> Options:
    from reconciler.engine import Mode, Options
    from reconciler.publish.config import PublishConfig
    from reconciler.statedir import state_dir

    apply_args = apply_args or ApplyArgs()
    pub = publish_args or PublishArgs()
    publish = PublishConfig(
        enabled=pub.publish, ca_file=pub.registry_ca_file, docker_config=pub.docker_config,
        plain_http=pub.registry_plain_http, sources_cache=state_dir() / "sources",
    )
    return Options(
        dry_run=dry_run, detect_only=apply_args.detect_only, prune=apply_args.prune, force=apply_args.force,
        allow_empty=apply_args.allow_empty, mode=Mode(engine_args.mode), path=src.render_path,
        timeout=engine_args.timeout, concurrency=engine_args.concurrency, publish=publish,
    )


def exit_code(record: ReconcileRecord, *, drift_is_a_finding: bool) -> int:
    """The one rule every command follows: 2 when the cluster, an object or I/O failed; else 1
    when the repo is invalid (render or validation errors, as `spindle validate` exits) or for
    drift when drift is what was asked about; else 0."""
    if not record.ok:
        invalid = set(record.invalid)
        failed = any(e.action is Action.FAILED for e in record.entries)
        if invalid and not failed and all(e in invalid for e in record.errors):
            return EXIT_INVALID
        return EXIT_ERROR
    return EXIT_DRIFT if drift_is_a_finding and record.drifted else EXIT_OK


@contextmanager
def one_writer(
    client: Any, source_name: str, apply_args: ApplyArgs | None, *, dry_run: bool, command: str,
    say: Callable[[str], None],
) -> Iterator[None]:
    """Hold the source's Lease around a run that changes the cluster; a held Lease (with
    `--no-wait`, or past `--lock-timeout`) is a SetupError."""
    if apply_args is None or not apply_args.takes_lock(dry_run=dry_run):
        yield
        return
    from reconciler import lease
    from reconciler.kube import errors

    try:
        with lease.held(client, source_name, command=command, timeout=apply_args.lock_timeout,
                        wait=not apply_args.no_wait, say=say):
            yield
    except lease.LeaseHeld as exc:
        raise SetupError(str(exc)) from None
    except errors.KubeError as exc:  # nothing was reconciled: the Lease could not even be read
        raise SetupError(f"cannot take the Lease of source {source_name}: {exc}") from None


@contextmanager
def progress() -> Iterator[Callable[[str], None]]:
    """What the run is doing, on stderr: a spinner on a terminal; elsewhere (CI logs) one line
    per change of state, never the same line twice in a row."""
    if not sys.stderr.isatty():
        last: list[str] = []

        def say(message: str) -> None:
            if last != [message]:
                last[:] = [message]
                click.echo(f"spindle: {message}", err=True)

        yield say
        return
    from rich.console import Console

    with Console(stderr=True).status("reconciling") as status:
        yield status.update
