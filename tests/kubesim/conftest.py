"""Fixtures shared by kubesim's tests (defined in kubesim_fixtures.py): a running in-memory
kubesim per module, a raw HTTPS client, and a kubeconfig for kubectl and the Python client."""

from kubesim_fixtures import kubeconfig, raw, running

__all__ = ["kubeconfig", "raw", "running"]
