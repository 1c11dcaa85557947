"""URLs and credentials for git commands: normalise, redact, and build the per-command environment.

Tokens travel only in the environment of the one git process that needs them, as an
`http.extraHeader` set through `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`: never in a
URL, never in `.git/config`, never on a command line that `ps` shows, never in an error message.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from reconciler.source.errors import SourceConfigError
from reconciler.source.model import Auth

_SCP_LIKE = re.compile(r"^[\w.+-]+@[\w.-]+:(?!//)")
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def normalise_url(url: str) -> str:
    """A URL git can fetch shallowly: local paths become `file://` URLs (git ignores --depth otherwise)."""
    if "://" in url or _SCP_LIKE.match(url):
        return url
    return Path(url).expanduser().resolve().as_uri()


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(url without userinfo, user, password) for URLs like `https://user:token@host/repo`."""
    if "://" not in url:
        return url, None, None
    parts = urlsplit(url)
    if parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc)), parts.username, parts.password


def redact(text: str, *secrets: str) -> str:
    """Hide passwords in URLs and every given secret value anywhere in `text`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['userinfo'].split(':', 1)[0]}:***@"
                         if ":" in m["userinfo"] else m[0], text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def read_token(auth: Auth, url: str) -> str | None:
    if auth.token_file is not None:
        try:
            token = auth.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            why = exc.strerror or exc
            raise SourceConfigError(url, f"cannot read token file {auth.token_file}: {why}") from None
        if not token:
            raise SourceConfigError(url, f"token file {auth.token_file} is empty")
        return token
    if auth.token_env is not None:
        token = os.environ.get(auth.token_env, "").strip()
        if not token:
            raise SourceConfigError(url, f"environment variable {auth.token_env} is unset or empty")
        return token
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def git_env(url: str, auth: Auth, token: str | None) -> dict[str, str]:
    """Environment for one git command against `url` (already stripped of credentials)."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    ssh = url.startswith("ssh://") or bool(_SCP_LIKE.match(url))
    if ssh or auth.ssh_key is not None:
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        if auth.known_hosts is not None:
            cmd += ["-o", f"UserKnownHostsFile={auth.known_hosts}"]
        if auth.ssh_key is not None:
            cmd += ["-i", str(auth.ssh_key), "-o", "IdentitiesOnly=yes"]
        env["GIT_SSH_COMMAND"] = shlex.join(cmd)
    if token is not None:
        scheme = urlsplit(url).scheme
        if scheme not in ("https", "http"):
            raise SourceConfigError(redact(url), "a token works only with https:// URLs")
        if scheme == "http" and not _is_loopback(urlsplit(url).hostname or ""):
            raise SourceConfigError(redact(url), "refusing to send a token over plain http")
        basic = base64.b64encode(f"{auth.username}:{token}".encode()).decode()
        config = [
            ("credential.helper", ""),  # no helper may store or replace our credential
            ("http.extraHeader", f"Authorization: Basic {basic}"),
        ]
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def secrets_of(auth: Auth, token: str | None) -> tuple[str, ...]:
    """Every form in which a token could appear in git's output."""
    if not token:
        return ()
    return (token, base64.b64encode(f"{auth.username}:{token}".encode()).decode())
