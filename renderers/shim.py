"""Shim → RuntimeClass and node-installer Jobs, as runtime-class-manager (RCM) creates them.

A pure function of (Shims in Git, the cluster's Nodes, settings): the CLI reads Nodes from a
`--nodes` YAML file, the reconciler passes live ones. Per Shim:

* a RuntimeClass `runtimeClass.name` (cut to 63) labelled `{<name>: "true"}`, with the Shim's
  handler and `scheduling.nodeSelector` (the Shim's nodeSelector, or `{}`);
* one install Job per selected node (all nodes when the nodeSelector is unset) whose state
  label `<shim>` is not `provisioned`. RCM also skips `pending` nodes because it only creates
  Jobs; spindle renders the whole desired state, so a pending node keeps its (identical) Job
  instead of having it pruned mid-install. The `rolling` rollout strategy gets no Jobs and an
  error, as RCM fails it after creating the RuntimeClass; so does a Shim whose fetchStrategy
  has neither platforms nor anonHttp.location (every installer would fail), nodes given or not;
* uninstall Jobs for nodes that carry the state label of a Shim that is no longer in Git
  (and that its nodeSelector matches, when the retired Shim is known).
  RUNTIME_OPTIONS of an uninstall must equal the install's (the installer removes its TOML
  block by exact match), so callers pass the retired Shim objects when they know them (the
  reconciler: from the last applied revision); otherwise none are set.

Unlike RCM, no ownerReference to the Shim is written: spindle applies these objects itself
and the Shim's uid is not known when rendering.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from renderers import crds
from renderers.errors import (
    DuplicateObjectError,
    FetchStrategyError,
    NodePlatformError,
    RenderError,
    RolloutStrategyError,
)
from renderers.meta import (
    RCM_JOB_KEY,
    RCM_NODE_NAME_KEY,
    RCM_OPERATION_KEY,
    RCM_SHIM_NAME_KEY,
    SOURCE_PATH_ANNOTATION,
)
from renderers.model import Obj, SourceDoc
from renderers.settings import RenderSettings

K8S_NAME_MAX = 63
HOST_ROOT = "/mnt/node-root"
ASSETS = "/assets"
INSTALL, UNINSTALL = "install", "uninstall"
# Values RCM writes to a node's `<shim>` label.
NODE_STATES = frozenset({"pending", "provisioned", "failed", "uninstall"})
_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}
_TRAILING_JUNK = re.compile(r"[^A-Za-z0-9]+$")


@dataclass
class ShimRendering:
    # (object, repo path it came from)
    objects: list[tuple[Obj, str]] = field(default_factory=list)
    errors: list[RenderError] = field(default_factory=list)


def trim_name(name: str) -> str:
    """Cut to 63 characters, then drop trailing non-alphanumerics (RCM after v0.2.0)."""
    return _TRAILING_JUNK.sub("", name[:K8S_NAME_MAX])


def _go_json(value: Mapping[str, str]) -> str:
    """Go's `json.Marshal` of a map[string]string: sorted keys, compact, HTML-escaped."""
    text = json.dumps(dict(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text


def runtime_class(spec: Mapping[str, Any]) -> Obj:
    name = str(spec["runtimeClass"]["name"])[:K8S_NAME_MAX]
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": name, "labels": {name: "true"}},
        "handler": spec["runtimeClass"]["handler"],
        "scheduling": {"nodeSelector": dict(spec.get("nodeSelector") or {})},
    }


def selects(spec: Mapping[str, Any], node: Obj) -> bool:
    selector = spec.get("nodeSelector")
    if selector is None:
        return True
    if not isinstance(selector, dict):
        return False
    labels = _node_labels(node)
    return all(labels.get(k) == v for k, v in selector.items())


def _arch(name: str) -> str:
    return _ARCH_ALIASES.get(name, name)


def shim_location(spec: Mapping[str, Any], node: Obj) -> tuple[str, str | None] | None:
    """(location, sha256) for the node's os/arch; None when no platform matches."""
    fetch = spec.get("fetchStrategy") or {}
    platforms = fetch.get("platforms") or []
    if platforms:
        info = _node_info(node)
        node_os, node_arch = info.get("operatingSystem"), _arch(str(info.get("architecture", "")))
        for platform in platforms:
            if platform.get("os") == node_os and _arch(str(platform.get("arch", ""))) == node_arch:
                return str(platform["location"]), platform.get("sha256") or None
        return None
    anon = fetch.get("anonHttp") or {}
    return (str(anon["location"]), None) if anon.get("location") else None


def _downloader(shim_name: str, location: tuple[str, str | None], settings: RenderSettings) -> Obj:
    """The install Job's init container: fetches the shim tarball into the shared /assets."""
    url, sha256 = location
    env: list[Obj] = [{"name": "SHIM_NAME", "value": shim_name}, {"name": "SHIM_LOCATION", "value": url}]
    if sha256:
        env.append({"name": "SHIM_SHA256", "value": sha256})
    downloader: Obj = {
        "image": settings.downloader_image,
        "name": "downloader",
        "securityContext": {"privileged": True},
        "env": env,
        "volumeMounts": [{"name": "shim-download", "mountPath": ASSETS}],
    }
    if settings.downloader_config_map:
        downloader["envFrom"] = [{"configMapRef": {"name": settings.downloader_config_map}}]
    return downloader


def installer_job(
    shim_name: str,
    spec: Mapping[str, Any] | None,
    node_name: str,
    operation: str,
    settings: RenderSettings,
    location: tuple[str, str | None] | None = None,
) -> Obj:
    """One RCM installer Job for `node_name` (spinkube.md 3.3). `spec` is the Shim's spec (None
    for a retired Shim whose spec is unknown: no RUNTIME_OPTIONS); `location` is the tarball's
    (url, sha256) for an install Job's downloader."""
    name = trim_name(f"{node_name}-{shim_name}-{operation}")
    env: list[Obj] = [{"name": "HOST_ROOT", "value": HOST_ROOT}]
    options = (spec or {}).get("containerdRuntimeOptions")
    if options is not None:
        env.append({"name": "RUNTIME_OPTIONS", "value": _go_json(options)})
    provisioner: Obj = {
        "image": settings.node_installer_image,
        "args": [operation, "-H", HOST_ROOT, "-r", shim_name],
        "name": "provisioner",
        "securityContext": {"privileged": True},
        "env": env,
        "volumeMounts": [
            {"name": "root-mount", "mountPath": HOST_ROOT},
            {"name": "shim-download", "mountPath": ASSETS},
        ],
    }
    pod_spec: Obj = {
        "nodeName": node_name,
        "hostPID": True,
        # A volume with no source: the API server defaults it to an emptyDir.
        "volumes": [{"name": "shim-download"}, {"name": "root-mount", "hostPath": {"path": "/"}}],
    }
    if operation == INSTALL and location is not None:
        pod_spec["initContainers"] = [_downloader(shim_name, location, settings)]
    pod_spec["containers"] = [provisioner]
    pod_spec["restartPolicy"] = "Never"
    job_spec: Obj = {"template": {"spec": pod_spec}}
    if settings.installer_job_ttl > 0:
        job_spec["ttlSecondsAfterFinished"] = settings.installer_job_ttl
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": settings.installer_namespace,
            "annotations": {
                RCM_NODE_NAME_KEY: node_name,
                RCM_SHIM_NAME_KEY: shim_name,
                RCM_OPERATION_KEY: operation,
            },
            "labels": {
                name: "true",
                RCM_SHIM_NAME_KEY: shim_name,
                RCM_OPERATION_KEY: operation,
                RCM_JOB_KEY: "true",
            },
        },
        "spec": job_spec,
    }


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _node_name(node: Obj) -> str:
    return str(_mapping(node.get("metadata")).get("name", ""))


def _node_labels(node: Obj) -> Mapping[str, Any]:
    return _mapping(_mapping(node.get("metadata")).get("labels"))


def _node_info(node: Obj) -> Mapping[str, Any]:
    return _mapping(_mapping(node.get("status")).get("nodeInfo"))


def render_shims(
    shims: Sequence[SourceDoc],
    nodes: Sequence[Obj],
    settings: RenderSettings,
    retired: Sequence[Obj] = (),
) -> ShimRendering:
    """RuntimeClasses and install Jobs for the Shims in Git, uninstall Jobs for `retired` ones
    (Shims that left Git) on the nodes that still carry their state label."""
    result = ShimRendering()
    nodes = sorted((n for n in nodes if isinstance(n, dict) and _node_name(n)), key=_node_name)
    in_git: dict[str, str] = {}
    for doc in shims:
        if doc.name in in_git:
            result.errors.append(
                DuplicateObjectError(
                    f"Shim {doc.name} is defined twice: in {in_git[doc.name]} and in {doc.location.path}",
                    doc.at("metadata.name"),
                    doc.subject,
                )
            )
            continue
        in_git[doc.name] = doc.location.path
        errors = crds.validate(doc)
        if errors:
            result.errors.extend(errors)
            continue
        spec = crds.apply_defaults(doc.body).get("spec") or {}
        result.objects.append((runtime_class(spec), doc.location.path))
        _install_jobs(doc, spec, nodes, settings, result)
    _uninstall_jobs(in_git, nodes, settings, retired, result)
    return result


def _install_jobs(
    doc: SourceDoc, spec: Mapping[str, Any], nodes: Sequence[Obj], settings: RenderSettings,
    result: ShimRendering,
) -> None:
    if spec["rolloutStrategy"]["type"] == "rolling":
        # RCM creates the RuntimeClass, then fails the rollout: no node gets a Job.
        result.errors.append(
            RolloutStrategyError(
                "rolloutStrategy 'rolling' is not implemented by runtime-class-manager "
                "(no installer Jobs are created); use 'recreate'",
                doc.at("spec.rolloutStrategy.type"),
                doc.subject,
            )
        )
        return
    fetch = spec.get("fetchStrategy") or {}
    if not fetch.get("platforms") and not (fetch.get("anonHttp") or {}).get("location"):
        # The CRD allows it, but every node's installer would fail with nothing to fetch.
        result.errors.append(
            FetchStrategyError(
                "fetchStrategy names nothing to download: list the shim tarballs in "
                "fetchStrategy.platforms (os, arch, location, sha256) or set anonHttp.location",
                doc.at("spec.fetchStrategy"),
                doc.subject,
            )
        )
        return
    for node in nodes:
        if not selects(spec, node) or _node_labels(node).get(doc.name) == "provisioned":
            continue
        location = shim_location(spec, node)
        if location is None:
            info = _node_info(node)
            result.errors.append(
                NodePlatformError(
                    f"node {_node_name(node)} ({info.get('operatingSystem', '?')}/"
                    f"{info.get('architecture', '?')}) matches no platform of the Shim",
                    doc.at("spec.fetchStrategy.platforms"),
                    doc.subject,
                )
            )
            continue
        job = installer_job(doc.name, spec, _node_name(node), INSTALL, settings, location)
        result.objects.append((job, doc.location.path))


def _uninstall_jobs(
    in_git: Mapping[str, str], nodes: Sequence[Obj], settings: RenderSettings, retired: Sequence[Obj],
    result: ShimRendering,
) -> None:
    """A node label `<shim>: <state>` for a Shim not in Git means it is still installed there."""
    retired_by_name = {str(_mapping(obj.get("metadata")).get("name", "")): obj for obj in retired}
    for node in nodes:
        labels = _node_labels(node).items()
        state_keys = [k for k, v in labels if isinstance(k, str) and isinstance(v, str) and v in NODE_STATES]
        for key in sorted(state_keys):
            if "/" in key or key in in_git:  # a prefixed key is never a Shim's state label
                continue
            old = _mapping(retired_by_name.get(key))
            old_spec = old.get("spec")
            # RCM uninstalls on the nodes its nodeSelector matches (all nodes when unknown).
            if isinstance(old_spec, dict) and not selects(old_spec, node):
                continue
            annotations = _mapping(_mapping(old.get("metadata")).get("annotations"))
            source = str(annotations.get(SOURCE_PATH_ANNOTATION, f"Shim/{key} (removed from Git)"))
            job = installer_job(key, old_spec, _node_name(node), UNINSTALL, settings)
            result.objects.append((job, source))
