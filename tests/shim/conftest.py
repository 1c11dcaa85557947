"""Fixtures for the shim tests (helpers live in shim_testlib, real services in shim_services)."""

from shim_services import redis_server
from shim_testlib import artifact_cache, engine_box, serve

__all__ = ["artifact_cache", "engine_box", "redis_server", "serve"]
