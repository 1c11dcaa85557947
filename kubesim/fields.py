"""The one seam between the API server and the server-side-apply engine (kubesim.ssa).

Placeholder until the engine lands: merges without field ownership.
"""

from __future__ import annotations

import copy
from typing import Any

from kubesim.errors import ApiError
from kubesim.meta import merge_patch
from kubesim.resources import ResourceType


def apply(
    rtype: ResourceType,
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    *,
    force: bool,
    subresource: str,
    now: str,
) -> dict[str, Any]:
    base = copy.deepcopy(live) if live else {}
    out: dict[str, Any] = merge_patch(base, config)
    return out


def update(
    rtype: ResourceType,
    live: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    subresource: str,
    now: str,
) -> dict[str, Any]:
    return new


def default(rtype: ResourceType, obj: dict[str, Any]) -> None:
    return None


def strategic_merge(rtype: ResourceType, live: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = merge_patch(live, patch)
    return out


def conflict_error(exc: Exception) -> ApiError | None:
    return None
