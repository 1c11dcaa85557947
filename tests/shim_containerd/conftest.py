"""Fixtures for the containerd shim tests: one real containerd (CRI on) per session, a CRI client,
pods that are always torn down, and the busybox httpd image. Helpers live in containerd_env.py."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator

import pytest
from containerd_env import (
    BUSYBOX,
    CRI_NAMESPACE,
    HTTPD_IMAGE,
    PAUSE_IMAGE,
    Containerd,
    CriPods,
    httpd_image_tar,
    pause_image_tar,
)
from cri.client import CriClient


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip(
            f"containerd tests need root (overlay mounts, netns, cgroups); running as uid {os.geteuid()}"
        )
    for tool in ("containerd", "ctr", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: containerd, iproute2)")
    if not BUSYBOX.is_file():
        pytest.skip(f"{BUSYBOX} is missing (Debian: busybox-static); the test images are built from it")


@pytest.fixture(scope="session")
def containerd() -> Iterator[Containerd]:
    """containerd 1.6 with CRI, confined to /tmp/sdc-XXXXXXXX; the pause image is imported into k8s.io.

    Teardown stops it by PID, kills leftover shims and containers, unmounts, deletes netns, the CNI
    bridge and the root; it fails if anything could not be removed.
    """
    _skip_unless_possible()
    env = Containerd.start()
    try:
        images = env.root / "images"
        images.mkdir()
        env.import_image(pause_image_tar(images / "pause.tar"), namespace=CRI_NAMESPACE)
        with env.cri() as cri:
            if cri.image_status(PAUSE_IMAGE) is None:
                raise RuntimeError(f"CRI does not see the sandbox image {PAUSE_IMAGE} after the import")
        yield env
    finally:
        report = env.cleanup()
        for note in report.notes:
            warnings.warn(f"containerd teardown: {note}", stacklevel=1)
        if report.problems:
            pytest.fail("containerd teardown left things behind:\n" + "\n".join(report.problems))


@pytest.fixture(scope="session")
def httpd_image(containerd: Containerd) -> str:
    """busybox httpd (`httpd -f -v -p 8080 -h /www`, /www/index.html) imported into k8s.io; its name."""
    tar = httpd_image_tar(containerd.root / "images" / "httpd.tar")
    containerd.import_image(tar, namespace=CRI_NAMESPACE)
    return HTTPD_IMAGE


@pytest.fixture
def cri(containerd: Containerd) -> Iterator[CriClient]:
    with containerd.cri() as client:
        yield client


@pytest.fixture
def pods(containerd: Containerd, cri: CriClient) -> Iterator[CriPods]:
    """`pods.run(name, handler)` runs a pod sandbox; every one is stopped and removed after the test."""
    tracker = CriPods(containerd, cri)
    try:
        yield tracker
    finally:
        tracker.close()
