"""The I/O-free pieces of the registry client: references, Docker config credentials, WWW-Authenticate
challenges, scopes, token cache, retry delays, and the plain-HTTP rule."""

from __future__ import annotations

import base64
import email.utils
import json
import time
from pathlib import Path

import pytest

from oci.auth import Challenge, Credentials, DockerConfig, TokenCache, merge_scopes, scope_for
from oci.errors import CredentialsError, InvalidReference, Unreachable
from oci.reference import Reference
from oci.registry import RegistryClient
from oci.transport import RetryPolicy, is_loopback


@pytest.mark.parametrize(
    ("text", "full", "api_host"),
    [
        ("app", "docker.io/library/app:latest", "registry-1.docker.io"),
        ("app:1", "docker.io/library/app:1", "registry-1.docker.io"),
        ("user/app", "docker.io/user/app:latest", "registry-1.docker.io"),
        ("index.docker.io/user/app:2", "docker.io/user/app:2", "registry-1.docker.io"),
        ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000"),
        ("localhost/app:1", "localhost/app:1", "localhost"),
        ("ghcr.io/org/team/app:v1.2-rc_3", "ghcr.io/org/team/app:v1.2-rc_3", "ghcr.io"),
        ("127.0.0.1:5000/a/b@sha256:" + "a" * 64, "127.0.0.1:5000/a/b@sha256:" + "a" * 64, "127.0.0.1:5000"),
        ("r.io/a:t@sha256:" + "b" * 64, "r.io/a:t@sha256:" + "b" * 64, "r.io"),
    ],
)
def test_reference_normalization(text: str, full: str, api_host: str) -> None:
    ref = Reference.parse(text)
    assert (str(ref), ref.api_host) == (full, api_host)
    assert Reference.parse(str(ref)) == ref


@pytest.mark.parametrize(
    "text", ["", "App:1", "app:", "app@sha256:abc", "a//b", " app", "r.io/a:t:t", "-x/app"]
)
def test_bad_references(text: str) -> None:
    with pytest.raises(InvalidReference, match="image reference"):
        Reference.parse(text)


def _config(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    return path


def test_docker_config_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    encoded = base64.b64encode(b"bob:pa:ss").decode()
    path = _config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": encoded},
                "registry.example.com:5000": {"username": "carol", "password": "pw"},
                "https://token.example.com": {"identitytoken": "x"},
                "empty.example.com": {},
            }
        },
    )
    config = DockerConfig.load(path)
    assert config.credentials_for("docker.io") == Credentials("bob", "pa:ss", str(path))
    assert config.credentials_for("registry.example.com:5000") == Credentials("carol", "pw", str(path))
    assert config.credentials_for("other.example.com") is None
    assert config.credentials_for("empty.example.com") is None
    with pytest.raises(CredentialsError, match=r"registry token\.example\.com: .*identity token"):
        config.credentials_for("token.example.com")
    assert "pw" not in repr(config.credentials_for("registry.example.com:5000"))

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert DockerConfig.load().path == path
    assert DockerConfig.load(tmp_path / "missing.json").credentials_for("docker.io") is None


def test_docker_config_helpers_are_named_and_refused(tmp_path: Path) -> None:
    path = _config(
        tmp_path, {"credHelpers": {"gcr.io": "gcloud"}, "credsStore": "desktop", "auths": {"a.io": {}}}
    )
    config = DockerConfig.load(path)
    with pytest.raises(
        CredentialsError, match=r"registry gcr\.io: .*'docker-credential-gcloud' \(credHelpers\)"
    ):
        config.credentials_for("gcr.io")
    with pytest.raises(
        CredentialsError, match=r"registry a\.io: .*'docker-credential-desktop' \(credsStore\)"
    ):
        config.credentials_for("a.io")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(CredentialsError, match=r"bad\.json is not valid JSON"):
        DockerConfig.load(tmp_path / "bad.json")


def test_challenge_parsing_and_scopes() -> None:
    challenge = Challenge.parse(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push repository:team/base:pull",error="insufficient_scope"'
    )
    assert challenge is not None
    assert (challenge.scheme, challenge.realm, challenge.service) == (
        "bearer",
        "https://auth.example.com/token",
        "registry.example.com",
    )
    assert challenge.scopes == ("repository:team/app:pull,push", "repository:team/base:pull")
    basic = Challenge.parse('Basic realm="a \\"quoted\\" realm"')
    assert basic is not None and (basic.scheme, basic.realm) == ("basic", 'a "quoted" realm')
    assert Challenge.parse("") is None

    assert scope_for("team/app", ["push", "pull"]) == "repository:team/app:pull,push"
    assert merge_scopes(
        ["repository:a:pull", "repository:b:pull", "repository:a:push", "repository:a:pull"]
    ) == (
        "repository:a:pull,push",
        "repository:b:pull",
    )


def test_token_cache_expiry() -> None:
    now = [100.0]
    cache = TokenCache(clock=lambda: now[0])
    key = ("https://auth", "svc", ("repository:a:pull",))
    cache.put(*key, "tok", 60)
    assert cache.get(*key) == "tok"
    assert cache.get("https://auth", "svc", ("repository:a:pull,push",)) is None
    now[0] += 49.0
    assert cache.get(*key) == "tok"
    now[0] += 2.0  # within 10 s of expiry: refetch
    assert cache.get(*key) is None


def test_retry_policy_delays() -> None:
    policy = RetryPolicy(attempts=6, initial_delay=0.5, max_delay=4.0, max_retry_after=30.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(1, "7") == 7.0
    assert policy.delay(1, "3600") == 30.0
    assert policy.delay(1, "soon") == 0.5
    in_five = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.0 <= policy.delay(1, in_five) <= 5.0


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.8.9.10", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("registry.example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("force", "scheme"), [(False, "https"), (True, "http")])
def test_plain_http_only_for_loopback_unless_forced(force: bool, scheme: str, tmp_path: Path) -> None:
    client = RegistryClient(force_plain_http=force, retry=RetryPolicy(attempts=1), timeout=0.3)
    with pytest.raises(
        Unreachable, match=rf"registry 192\.0\.2\.1:5000: ping: GET {scheme}://192\.0\.2\.1:5000/v2/"
    ):
        client.pull("192.0.2.1:5000/team/app:1", tmp_path / "x")
