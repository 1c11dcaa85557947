"""Constants the node release tests share (conftest.py holds the fixtures)."""

from __future__ import annotations

EPOCH = 1_700_000_000  # SOURCE_DATE_EPOCH of the tests' tarballs and images
USER, PASSWORD = "node-pusher", "n0de-s3cret"  # the test registry's htpasswd account
