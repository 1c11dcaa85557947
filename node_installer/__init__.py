"""Installs and removes the Spin shim on a node's host root and registers it with containerd."""
