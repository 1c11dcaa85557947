"""Fixtures for the node installer tests (helpers live in node_installer_testlib.py). The
containerd test helpers of tests/shim_containerd (containerd_env, spin_images, the CRI client)
are importable here too, for the end-to-end test."""

from __future__ import annotations

import sys
from collections.abc import Callable
from itertools import count
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "shim_containerd"))

from node_installer_testlib import SHIM_BYTES, Node, make_node_in


@pytest.fixture
def make_node(tmp_path: Path) -> Callable[..., Node]:
    """make_node(case=None) → a Node whose root is a copy of goldens/<case>/before (or empty)."""
    numbers = count()

    def make(case: str | None = None, shim: bytes = SHIM_BYTES) -> Node:
        return make_node_in(tmp_path / f"node{next(numbers)}", case, shim)

    return make
