"""Settings of the renderers: everything that is not in the repo but shapes the output.

`DEFAULT_SETTINGS` takes the two images of the node-installer Jobs from the environment when set,
so every command that renders (`render`, `validate`, `diff`, `apply`, `reconcile`) uses the same
ones: `SPINDLE_NODE_INSTALLER_IMAGE` (e.g. what `spindle node push` pushed, by digest) and
`SPINDLE_DOWNLOADER_IMAGE`, like RCM's SHIM_NODE_INSTALLER_IMAGE and SHIM_DOWNLOADER_IMAGE.
`spindle render/validate --node-installer-image/--downloader-image` override them per command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import metadata


def _package_version() -> str:
    try:
        return metadata.version("spindle-gitops")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


_version = _package_version()


@dataclass(frozen=True)
class RenderSettings:
    # Namespace of namespaced objects that do not name one (kubectl's default context namespace).
    default_namespace: str = "default"
    # Where node-installer Jobs run: runtime-class-manager uses its release namespace.
    installer_namespace: str = "spindle-system"
    # Image of the Job's init container that fetches the shim tarball (RCM: SHIM_DOWNLOADER_IMAGE).
    downloader_image: str = f"ghcr.io/spindle-dev/shim-downloader:{_version}"
    # Image of the Job's container that installs the shim on the node (RCM: SHIM_NODE_INSTALLER_IMAGE).
    node_installer_image: str = f"ghcr.io/spindle-dev/node-installer:{_version}"
    # RCM's SHIM_NODE_INSTALLER_JOB_TTL: ttlSecondsAfterFinished only when > 0.
    installer_job_ttl: int = 0
    # RCM's SHIM_DOWNLOADER_CONFIG_MAP: an optional envFrom ConfigMap for the downloader.
    downloader_config_map: str | None = None
    # Emit the repo's SpinApp / SpinAppExecutor / Shim objects too (with their CRDs), so the
    # cluster shows them; their workloads are rendered by spindle either way.
    include_sources: bool = True
    # Emit the CustomResourceDefinitions of SpinApp, SpinAppExecutor and Shim.
    include_crds: bool = True


NODE_INSTALLER_IMAGE_ENV = "SPINDLE_NODE_INSTALLER_IMAGE"
DOWNLOADER_IMAGE_ENV = "SPINDLE_DOWNLOADER_IMAGE"


def from_environment(environ: Mapping[str, str], base: RenderSettings | None = None) -> RenderSettings:
    """`base` (default: the built-in settings) with the images the environment names."""
    base = base or RenderSettings()
    installer = environ.get(NODE_INSTALLER_IMAGE_ENV, "").strip()
    downloader = environ.get(DOWNLOADER_IMAGE_ENV, "").strip()
    return replace(base, node_installer_image=installer or base.node_installer_image,
                   downloader_image=downloader or base.downloader_image)


DEFAULT_SETTINGS = from_environment(os.environ)
