"""Settings of the renderers: everything that is not in the repo but shapes the output."""

from __future__ import annotations

from dataclasses import dataclass
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


DEFAULT_SETTINGS = RenderSettings()
