"""Fixtures for the publishing tests. The helpers they reuse live in other test directories (pytest puts
only each test file's own directory on sys.path), so those directories are added here: tests/oci
(`oci_testlib`: docker-registry, CA, token server, flaky proxy), tests/reconciler (`spindle_synclib`:
kubesim, the in-process CLI, kubectl; `spindle_gitfixtures`: git remotes) and tests/shim_containerd
(`containerd_env`, `spin_images`). Nothing in those directories is modified."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
for sub in ("oci", "reconciler", "shim_containerd", "publish"):
    path = str(TESTS / sub)
    if path not in sys.path:
        sys.path.append(path)

from oci_testlib import Registry, run_registry  # noqa: E402


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One anonymous docker-registry on 127.0.0.1 for the whole session (repositories keep tests apart)."""
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running
