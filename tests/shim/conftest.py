"""Fixtures for the shim tests (helpers live in shim_testlib)."""

from shim_testlib import artifact_cache, engine_box, serve

__all__ = ["artifact_cache", "engine_box", "serve"]
