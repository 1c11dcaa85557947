"""How `apply`/`reconcile` publish the projects that ask for it (kept light: the engine imports it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PublishConfig:
    enabled: bool = True  # False: projects with `publish` render unpinned and nothing is pushed
    ca_file: Path | None = None  # extra CA certificates for the registries
    docker_config: Path | None = None  # credentials (default: $DOCKER_CONFIG/config.json, ~/.docker)
    plain_http: bool = False  # plain HTTP for every registry (loopback ones fall back to it anyway)
    sources_cache: Path | None = None  # where verified `{ url, digest }` sources are kept
