"""Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch) for built-in kinds."""

from __future__ import annotations

from typing import Any

from kubesim.schema.types import ResourceSchema


def apply_strategic_merge_patch(live: dict[str, Any], patch: dict[str, Any], schema: ResourceSchema,
                                ) -> dict[str, Any]:
    raise NotImplementedError
