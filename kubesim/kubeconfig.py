"""The kubeconfig that points kubectl and the Python client at a kubesim (pure)."""

from __future__ import annotations

import base64

import yaml


def kubeconfig_yaml(
    url: str, token: str, ca_pem: bytes, name: str = "kubesim", namespace: str = "default"
) -> str:
    ca = base64.b64encode(ca_pem).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url, "certificate-authority-data": ca}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }
    text: str = yaml.safe_dump(doc, sort_keys=False)
    return text
