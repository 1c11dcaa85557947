"""Shim → RuntimeClass and node-installer Jobs, checked against spinkube.md section 3.
Expected objects are written by hand from the reference (3.2, 3.3)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from spindle_renderlib import strip_spindle_marks, tree_from_yaml

from renderers.errors import FetchStrategyError, NodePlatformError, RolloutStrategyError, SchemaError
from renderers.render import render
from renderers.settings import RenderSettings
from renderers.shim import render_shims, trim_name

SETTINGS = RenderSettings(
    include_crds=False,
    include_sources=False,
    installer_namespace="rcm-system",
    downloader_image="example.com/downloader:1",
    node_installer_image="example.com/node-installer:1",
)

SHIMS = """
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata: {name: spin-v2}
spec:
  nodeSelector: {spin: "true"}
  fetchStrategy:
    type: anonymousHttp
    anonHttp: {location: "https://example.com/legacy.tar.gz"}
    platforms:
    - {os: linux, arch: x86_64, location: "https://example.com/spin-x86_64.tar.gz", sha256: aaa}
    - {os: linux, arch: aarch64, location: "https://example.com/spin-aarch64.tar.gz", sha256: bbb}
  runtimeClass: {name: wasmtime-spin-v2, handler: spin-v2}
  rolloutStrategy: {type: recreate}
  containerdRuntimeOptions: {SystemdCgroup: "true"}
---
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata: {name: lunatic}
spec:
  fetchStrategy:
    anonHttp: {location: "https://example.com/lunatic.tar.gz"}
  runtimeClass: {name: lunatic, handler: lunatic}
  rolloutStrategy: {type: recreate}
"""


def node(name: str, arch: str, labels: dict[str, str], os: str = "linux") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {"nodeInfo": {"operatingSystem": os, "architecture": arch}},
    }


NODES = [
    node("amd-1", "amd64", {"spin": "true"}),                           # Go-style arch name
    node("arm-1", "arm64", {"spin": "true"}),                           # Go-style, matches aarch64
    node("arm-2", "arm64", {"spin": "true", "spin-v2": "provisioned"}),  # already done
    node("plain-1", "amd64", {}),                                       # not selected by spin-v2
    node("riscv-1", "riscv64", {"spin": "true"}),                       # no platform
    node("amd-2", "x86_64", {"spin": "true", "spin-v2": "pending"}),    # uname-style, pending
]


def install_job(node_name: str, shim: str, location: str, sha: str | None,
                options: str | None) -> dict[str, Any]:
    name = f"{node_name}-{shim}-install"
    env = [{"name": "SHIM_NAME", "value": shim}, {"name": "SHIM_LOCATION", "value": location}]
    if sha:
        env.append({"name": "SHIM_SHA256", "value": sha})
    provisioner_env = [{"name": "HOST_ROOT", "value": "/mnt/node-root"}]
    if options is not None:
        provisioner_env.append({"name": "RUNTIME_OPTIONS", "value": options})
    return yaml.safe_load(f"""
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  namespace: rcm-system
  annotations:
    spinkube.dev/nodeName: {node_name}
    spinkube.dev/shimName: {shim}
    spinkube.dev/operation: install
  labels:
    {name}: "true"
    spinkube.dev/shimName: {shim}
    spinkube.dev/operation: install
    spinkube.dev/job: "true"
spec:
  template:
    spec:
      nodeName: {node_name}
      hostPID: true
      volumes:
      - name: shim-download
      - name: root-mount
        hostPath: {{path: /}}
      initContainers:
      - image: example.com/downloader:1
        name: downloader
        securityContext: {{privileged: true}}
        env: {env}
        volumeMounts: [{{name: shim-download, mountPath: /assets}}]
      containers:
      - image: example.com/node-installer:1
        args: [install, -H, /mnt/node-root, -r, {shim}]
        name: provisioner
        securityContext: {{privileged: true}}
        env: {provisioner_env}
        volumeMounts:
        - {{name: root-mount, mountPath: /mnt/node-root}}
        - {{name: shim-download, mountPath: /assets}}
      restartPolicy: Never
""")


def _render(nodes: list[dict[str, Any]], shims: str = SHIMS) -> tuple[dict[str, dict[str, Any]], list[Any]]:
    result = render(tree_from_yaml(shims, "infra/shims.yaml"), nodes, SETTINGS)
    return {o["metadata"]["name"]: strip_spindle_marks(o) for o in result.objects}, result.errors


def test_runtime_classes_as_rcm_creates_them() -> None:
    objects, _ = _render([])
    assert objects["wasmtime-spin-v2"] == {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": "wasmtime-spin-v2", "labels": {"wasmtime-spin-v2": "true"}},
        "handler": "spin-v2",
        "scheduling": {"nodeSelector": {"spin": "true"}},
    }
    assert objects["lunatic"]["scheduling"] == {"nodeSelector": {}}


def test_install_jobs_per_selected_unprovisioned_node() -> None:
    objects, errors = _render(NODES)
    jobs = sorted(n for n, o in objects.items() if o["kind"] == "Job")
    assert jobs == [
        # lunatic has no nodeSelector: every node, whatever its state label for spin-v2
        "amd-1-lunatic-install", "amd-1-spin-v2-install",
        "amd-2-lunatic-install", "amd-2-spin-v2-install",
        "arm-1-lunatic-install", "arm-1-spin-v2-install",
        "arm-2-lunatic-install",
        "plain-1-lunatic-install",
        "riscv-1-lunatic-install",
    ]
    options = '{"SystemdCgroup":"true"}'
    assert objects["amd-1-spin-v2-install"] == install_job(
        "amd-1", "spin-v2", "https://example.com/spin-x86_64.tar.gz", "aaa", options)
    assert objects["arm-1-spin-v2-install"] == install_job(
        "arm-1", "spin-v2", "https://example.com/spin-aarch64.tar.gz", "bbb", options)
    assert objects["amd-2-spin-v2-install"] == install_job(
        "amd-2", "spin-v2", "https://example.com/spin-x86_64.tar.gz", "aaa", options)
    # anonHttp only (legacy): no sha, and no containerdRuntimeOptions → no RUNTIME_OPTIONS
    assert objects["arm-2-lunatic-install"] == install_job(
        "arm-2", "lunatic", "https://example.com/lunatic.tar.gz", None, None)

    assert len(errors) == 1
    (error,) = errors
    assert isinstance(error, NodePlatformError)
    assert "riscv-1" in error.message and "riscv64" in error.message
    assert error.location.path == "infra/shims.yaml"
    assert error.location.field == "spec.fetchStrategy.platforms"
    assert error.obj == "Shim/spin-v2"


@pytest.mark.parametrize(
    ("platform_arch", "node_arch", "matches"),
    [
        ("x86_64", "amd64", True), ("amd64", "amd64", True), ("amd64", "x86_64", True),
        ("aarch64", "arm64", True), ("arm64", "aarch64", True), ("arm64", "amd64", False),
    ],
)
def test_both_arch_naming_styles(platform_arch: str, node_arch: str, matches: bool) -> None:
    shim = tree_from_yaml(f"""
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata: {{name: s}}
spec:
  fetchStrategy:
    platforms: [{{os: linux, arch: {platform_arch}, location: "https://x/s.tgz"}}]
  runtimeClass: {{name: s, handler: s}}
  rolloutStrategy: {{type: recreate}}
""").shims
    result = render_shims(shim, [node("n", node_arch, {})], SETTINGS)
    expected_kinds = ["RuntimeClass", "Job"] if matches else ["RuntimeClass"]
    assert [o["kind"] for o, _ in result.objects] == expected_kinds
    assert bool(result.errors) != matches


def test_uninstall_job_for_a_shim_that_left_git() -> None:
    nodes = [node("amd-1", "amd64", {"spin": "true", "old-shim": "provisioned", "team": "x"})]
    retired = [yaml.safe_load("""
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata: {name: old-shim}
spec: {containerdRuntimeOptions: {SystemdCgroup: "true"}}
""")]
    result = render_shims(tree_from_yaml(SHIMS).shims, nodes, SETTINGS, retired)
    jobs = {o["metadata"]["name"]: o for o, _ in result.objects if o["kind"] == "Job"}
    assert set(jobs) == {"amd-1-spin-v2-install", "amd-1-lunatic-install", "amd-1-old-shim-uninstall"}
    job = jobs["amd-1-old-shim-uninstall"]
    assert job["metadata"]["labels"]["spinkube.dev/operation"] == "uninstall"
    pod = job["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert pod["nodeName"] == "amd-1" and pod["hostPID"] is True
    assert pod["containers"][0]["args"] == ["uninstall", "-H", "/mnt/node-root", "-r", "old-shim"]
    assert pod["containers"][0]["env"] == [
        {"name": "HOST_ROOT", "value": "/mnt/node-root"},
        {"name": "RUNTIME_OPTIONS", "value": '{"SystemdCgroup":"true"}'},
    ]


@pytest.mark.parametrize(
    ("selector", "labels", "uninstalls"),
    [
        ("", {}, True),  # retired spec without nodeSelector: every labelled node
        ("nodeSelector: {spin: \"true\"}", {"spin": "true"}, True),
        ("nodeSelector: {spin: \"true\"}", {}, False),  # RCM lists matching nodes only
    ],
)
def test_uninstall_follows_the_retired_shims_node_selector(
    selector: str, labels: dict[str, str], uninstalls: bool
) -> None:
    retired = [yaml.safe_load(f"""
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata: {{name: old-shim}}
spec: {{{selector}}}
""")]
    nodes = [node("n1", "amd64", {**labels, "old-shim": "provisioned"})]
    result = render_shims([], nodes, SETTINGS, retired)
    names = [o["metadata"]["name"] for o, _ in result.objects]
    assert names == (["n1-old-shim-uninstall"] if uninstalls else [])


def test_job_names_are_cut_to_63_without_trailing_punctuation() -> None:
    long_node = "n" * 52 + "-x"  # 54 chars: "<node>-spin-v2-install" cut at 63 ends in "-"
    name = trim_name(f"{long_node}-spin-v2-install")
    assert len(name) <= 63 and name[-1].isalnum()
    assert name == (long_node + "-spin-v2-install")[:63].rstrip("-")


def test_schema_error_in_a_shim_names_file_and_field_and_keeps_the_other() -> None:
    broken = SHIMS.replace("rolloutStrategy: {type: recreate}\n  containerdRuntimeOptions",
                           "rolloutStrategy: {type: sideways}\n  containerdRuntimeOptions")
    objects, errors = _render([], broken)
    assert "lunatic" in objects and "wasmtime-spin-v2" not in objects
    (error,) = errors
    assert isinstance(error, SchemaError)
    assert error.location.field == "spec.rolloutStrategy.type"
    assert "sideways" in error.message


def test_rolling_rollout_gets_its_runtime_class_but_no_jobs_and_an_error() -> None:
    recreate = "rolloutStrategy: {type: recreate}\n  containerdRuntimeOptions"
    rolling = SHIMS.replace(recreate, recreate.replace("{type: recreate}", "{type: rolling}"))
    objects, errors = _render(NODES, rolling)
    assert "wasmtime-spin-v2" in objects
    assert not [n for n in objects if n.endswith("-spin-v2-install")]
    assert "amd-1-lunatic-install" in objects  # the other Shim is unaffected
    (error,) = errors
    assert isinstance(error, RolloutStrategyError)
    assert (error.location.path, error.location.field, error.obj) == (
        "infra/shims.yaml", "spec.rolloutStrategy.type", "Shim/spin-v2")


@pytest.mark.parametrize(
    ("ttl", "config_map"),
    [(0, None), (-5, None), (300, None), (0, "shim-proxy"), (60, "shim-proxy")],
)
def test_rcm_controller_settings_ttl_and_downloader_config_map(ttl: int, config_map: str | None) -> None:
    # SHIM_NODE_INSTALLER_JOB_TTL (only when > 0) and SHIM_DOWNLOADER_CONFIG_MAP (downloader envFrom).
    settings = dataclasses.replace(SETTINGS, installer_job_ttl=ttl, downloader_config_map=config_map)
    nodes = [node("n1", "amd64", {"spin": "true", "old-shim": "provisioned"})]
    retired = [{"kind": "Shim", "metadata": {"name": "old-shim"}}]
    result = render_shims(tree_from_yaml(SHIMS).shims, nodes, settings, retired)
    jobs = {o["metadata"]["name"]: o for o, _ in result.objects if o["kind"] == "Job"}
    assert set(jobs) == {"n1-spin-v2-install", "n1-lunatic-install", "n1-old-shim-uninstall"}
    for job in jobs.values():
        assert job["spec"].get("ttlSecondsAfterFinished") == (ttl if ttl > 0 else None)
        pod = job["spec"]["template"]["spec"]
        for init in pod.get("initContainers", []):
            expected = [{"configMapRef": {"name": config_map}}] if config_map else None
            assert init.get("envFrom") == expected
        assert "envFrom" not in pod["containers"][0]


def test_odd_node_labels_are_ignored_not_fatal() -> None:
    labels: dict[Any, Any] = {1: "x", "b": ["list"], "c": {"a": 1}, "d": None, "old": "provisioned"}
    nodes = [{"metadata": {"name": "n", "labels": labels}}]
    result = render_shims([], nodes, SETTINGS)
    assert [o["metadata"]["name"] for o, _ in result.objects] == ["n-old-uninstall"]


@pytest.mark.parametrize(
    "fetch", ["fetchStrategy: {}", "fetchStrategy: {type: anonymousHttp, platforms: []}"]
)
@pytest.mark.parametrize("nodes", [[], NODES], ids=["no-nodes", "nodes"])
def test_a_shim_with_nothing_to_download_is_an_error_even_without_nodes(
    fetch: str, nodes: list[dict[str, Any]]
) -> None:
    lunatic = 'fetchStrategy:\n    anonHttp: {location: "https://example.com/lunatic.tar.gz"}'
    assert lunatic in SHIMS
    objects, errors = _render(nodes, SHIMS.replace(lunatic, fetch))
    assert "lunatic" in objects  # its RuntimeClass, as RCM creates it before installing
    assert not [n for n in objects if n.endswith("-lunatic-install")]
    (error,) = [e for e in errors if e.obj == "Shim/lunatic"]  # NODES also has a riscv node for spin-v2
    assert isinstance(error, FetchStrategyError)
    assert (error.location.path, error.location.field) == ("infra/shims.yaml", "spec.fetchStrategy")
    assert "platforms" in error.message and "anonHttp.location" in error.message
