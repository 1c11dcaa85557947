"""Odd input never crashes the pipeline: random type swaps anywhere in a valid repo give either
a clean render or errors, never an exception (seeded, so a failure reproduces)."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
import yaml
from spindle_renderlib import field_paths, set_at, tree_from_docs

from renderers.render import render

REPO = list(yaml.safe_load_all("""
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: shim, namespace: demo}
spec:
  createDeployment: true
  deploymentConfig: {runtimeClassName: rc, installDefaultCACerts: true, otel: {exporter_otlp_endpoint: x}}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: demo}
stringData: {url: redis://x}
---
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: app, namespace: demo, labels: {a: b}}
spec:
  image: img
  executor: shim
  replicas: 2
  variables: [{name: v, value: x}, {name: w, valueFrom: {secretKeyRef: {name: creds, key: url}}}]
  checks: {readiness: {httpGet: {path: /, httpHeaders: [{name: a, value: b}]}}}
  resources: {limits: {memory: 128Mi}}
  invocationLimits: {memory: 64Mi}
  components: [a]
  volumes: [{name: d, emptyDir: {sizeLimit: 1Gi}}]
  volumeMounts: [{name: d, mountPath: /d}]
  imagePullSecrets: [{name: r}]
  runtimeConfig:
    keyValueStores:
    - name: default
      type: redis
      options: [{name: url, valueFrom: {secretKeyRef: {name: creds, key: url}}}]
    llmCompute: {type: remote_http, options: [{name: url, value: x}]}
---
apiVersion: runtime.spinkube.dev/v1alpha1
kind: Shim
metadata: {name: spin-v2}
spec:
  nodeSelector: {spin: "true"}
  fetchStrategy: {platforms: [{os: linux, arch: amd64, location: x}]}
  runtimeClass: {name: rc, handler: spin-v2}
  rolloutStrategy: {type: recreate}
  containerdRuntimeOptions: {SystemdCgroup: "true"}
"""))
NODES = [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "labels": {"spin": "true"}},
          "status": {"nodeInfo": {"operatingSystem": "linux", "architecture": "amd64"}}}]
ODD: list[Any] = [None, 0, -1, 2**40, 1.5, float("inf"), True, "", "x", "1e999", "-5Mi", [], [1, "a"], {},
                  {"k": [None]}]


def test_the_unmodified_repo_renders_cleanly() -> None:
    result = render(tree_from_docs(copy.deepcopy(REPO), "repo.yaml"), NODES)
    assert result.errors == []
    assert {o["kind"] for o in result.objects} >= {"Deployment", "Service", "Secret", "RuntimeClass", "Job"}


@pytest.mark.parametrize("seed", range(20))
def test_random_type_swaps_never_crash(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        docs = copy.deepcopy(REPO)
        index = rng.randrange(len(docs))
        # apiVersion, kind and metadata.name are guaranteed by discovery (a mapping with a name)
        fixed = {("apiVersion",), ("kind",), ("metadata",), ("metadata", "name")}
        path = rng.choice([p for p in field_paths(docs[index]) if p not in fixed])
        set_at(docs[index], path, copy.deepcopy(rng.choice(ODD)))
        result = render(tree_from_docs(docs, "repo.yaml"), NODES)
        # No crash, and every error it reports names the file the bad field is in.
        assert isinstance(result.objects, list)
        assert all("repo.yaml" in str(error) for error in result.errors), (path, result.errors)


@pytest.mark.parametrize("seed", range(5))
def test_odd_nodes_never_crash(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        nodes = copy.deepcopy(NODES)
        set_at(nodes[0], rng.choice(field_paths(nodes[0])), copy.deepcopy(rng.choice(ODD)))
        result = render(tree_from_docs(copy.deepcopy(REPO), "repo.yaml"), nodes)
        assert isinstance(result.errors, list)
