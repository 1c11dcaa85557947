"""The CA bundle of the `spin-ca` Secret. spin-operator embeds Mozilla's bundle; spindle uses
certifi's copy of the same bundle, read once."""

from __future__ import annotations

import base64
import functools
from pathlib import Path

import certifi


@functools.cache
def bundle_b64() -> str:
    return base64.b64encode(Path(certifi.where()).read_bytes()).decode()
