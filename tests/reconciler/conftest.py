"""Fixtures every reconciler test file may use; the helpers behind them live in spindle_*.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from spindle_synclib import Cluster, kubesim_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A real kubesim for this test; its kubeconfig is `cluster.kubeconfig`."""
    with kubesim_cluster(tmp_path / "kubeconfig") as running:
        yield running
