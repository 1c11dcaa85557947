"""Parsing `--notify` specs and posting events: debounced, retried with backoff, never raising."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reconciler.changeset import ReconcileRecord
from reconciler.notify import events

KINDS = ("generic", "slack", "github", "gitlab")
_OPTIONS = {
    "generic": {"secret-file", "secret-env"},
    "slack": set(),
    "github": {"api", "token-file", "token-env"},
    "gitlab": {"api", "token-file", "token-env"},
}
_DEFAULT_API = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}
_DEFAULT_TOKEN_ENV = {"github": "GITHUB_TOKEN", "gitlab": "GITLAB_TOKEN"}
_BUILD = {
    "generic": events.event_json, "slack": events.slack_json,
    "github": events.github_json, "gitlab": events.gitlab_json,
}


class NotifyError(ValueError):
    """A `--notify` spec that cannot work (unknown kind or option, missing target)."""


@dataclass(frozen=True)
class Target:
    kind: str
    target: str  # URL, OWNER/REPO or project
    options: dict[str, str] = field(default_factory=dict)

    @property
    def commit_status(self) -> bool:
        return self.kind in ("github", "gitlab")

    @property
    def name(self) -> str:
        """How warnings and the debounce memory name it (no token, no secret)."""
        return f"{self.kind}:{self.target}"

    def url(self, sha: str) -> str:
        if self.kind == "github":
            api = self.options.get("api", _DEFAULT_API["github"]).rstrip("/")
            return f"{api}/repos/{self.target}/statuses/{sha}"
        if self.kind == "gitlab":
            api = self.options.get("api", _DEFAULT_API["gitlab"]).rstrip("/")
            return f"{api}/projects/{quote(self.target, safe='')}/statuses/{sha}"
        return self.target


def parse_spec(spec: str) -> Target:
    """`KIND:TARGET[,key=value...]` or a bare http(s) URL."""
    head, *rest = spec.split(",")
    if head.startswith(("http://", "https://")):
        kind, target = "generic", head
    else:
        kind, sep, target = head.partition(":")
        if not sep or kind not in KINDS:
            raise NotifyError(f"{spec!r}: expected KIND:TARGET with KIND one of {', '.join(KINDS)}, or a URL")
    if not target:
        raise NotifyError(f"{spec!r}: names no target")
    if kind in ("generic", "slack") and not target.startswith(("http://", "https://")):
        raise NotifyError(f"{spec!r}: a {kind} target is an http(s) URL")
    if kind in ("github", "gitlab") and target.startswith(("http://", "https://")):
        raise NotifyError(f"{spec!r}: a {kind} target is {'OWNER/REPO' if kind == 'github' else 'a project'}")
    options: dict[str, str] = {}
    for item in rest:
        key, sep, value = item.partition("=")
        if not sep or key not in _OPTIONS[kind]:
            allowed = ", ".join(sorted(_OPTIONS[kind])) or "none"
            raise NotifyError(f"{spec!r}: unknown option {key!r} for {kind} (allowed: {allowed})")
        options[key] = value
    return Target(kind, target, options)


def _secret(target: Target) -> bytes | None:
    """The generic kind's HMAC secret, or a commit-status token (stripped)."""
    if target.kind == "generic":
        file_key, env_key, default_env = "secret-file", "secret-env", ""
    else:
        file_key, env_key, default_env = "token-file", "token-env", _DEFAULT_TOKEN_ENV.get(target.kind, "")
    if file_key in target.options:
        return Path(target.options[file_key]).read_bytes().strip()
    env = target.options.get(env_key, default_env)
    value = os.environ.get(env, "") if env else ""
    return value.strip().encode() if value.strip() else None


@dataclass
class Notifier:
    """Posts a run's outcome to every target; `warnings` collects what could not be posted."""

    targets: list[Target]
    link: str = ""
    memory: Path | None = None  # debounce memory (JSON), None: this process only
    attempts: int = 3
    backoff: float = 0.5
    timeout: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    _sent: dict[str, str] = field(default_factory=dict)

    def pending(self, source: str, sha: str) -> list[str]:
        return self._post(source, sha, events.PENDING, None, commit_status_only=True)

    def finished(self, record: ReconcileRecord) -> list[str]:
        sha = record.revision.sha if record.revision else ""
        return self._post(record.source, sha, events.outcome_of(record), record, commit_status_only=False)

    # -- pieces -----------------------------------------------------------------------------

    def _post(
        self, source: str, sha: str, outcome: str, record: ReconcileRecord | None, *, commit_status_only: bool
    ) -> list[str]:
        warnings: list[str] = []
        for target in self.targets:
            if commit_status_only and not target.commit_status:
                continue
            if target.commit_status and not sha:
                if record is not None:
                    warnings.append(f"notify {target.name}: no commit status without a Git revision")
                continue
            key = f"{target.name}|{source}|{sha}"
            last = self._load().get(key) if sha else None
            if last is not None and (outcome == events.PENDING or last == outcome):
                continue  # debounced: this revision already has this outcome (or is past pending)
            problem = self._send(target, sha, _BUILD[target.kind](source, sha, outcome, record, self.link))
            if problem:
                warnings.append(f"notify {target.name}: {problem}")
            elif sha:
                self._remember(key, outcome)
        return warnings

    def _send(self, target: Target, sha: str, doc: dict[str, Any]) -> str:
        """POST with retries; "" on success, else what went wrong (never the token)."""
        body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "spindle"}
        try:
            secret = _secret(target)
        except OSError as exc:
            what = "secret" if target.kind == "generic" else "token"
            return f"cannot read its {what}: {exc.strerror or exc}"
        if target.kind == "generic":
            headers["X-Spindle-Event"] = "reconcile"
            headers["X-Spindle-Delivery"] = secrets.token_hex(16)
            if secret:
                headers["X-Spindle-Signature-256"] = events.signature(secret, body)
        elif target.kind == "github":
            headers["Accept"] = "application/vnd.github+json"
            headers["X-GitHub-Api-Version"] = "2022-11-28"
            if secret:
                headers["Authorization"] = f"Bearer {secret.decode()}"
        elif target.kind == "gitlab" and secret:
            headers["PRIVATE-TOKEN"] = secret.decode()
        problem = ""
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(target.url(sha), data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    resp.read()
                return ""
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code} {exc.reason}"
                if exc.code < 500 and exc.code != 429:
                    return problem  # the request itself is wrong: retrying will not help
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                problem = f"cannot connect: {reason}"
            if attempt < self.attempts:
                self.sleep(self.backoff * 2 ** (attempt - 1))
        return f"{problem} (after {self.attempts} attempts)"

    def _load(self) -> dict[str, str]:
        """(target, source, revision) → the last outcome posted for it."""
        if self.memory is None:
            return dict(self._sent)
        try:
            loaded = json.loads(self.memory.read_text())
        except (OSError, ValueError):
            loaded = {}
        return {**(loaded if isinstance(loaded, dict) else {}), **self._sent}

    def _remember(self, key: str, outcome: str) -> None:
        self._sent[key] = outcome
        if self.memory is None:
            return
        known = self._load()
        keep = dict(list(known.items())[-5000:])
        try:
            self.memory.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.memory.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(keep))
            tmp.replace(self.memory)
        except OSError:
            pass  # debounce is best effort: a repeat post is harmless
