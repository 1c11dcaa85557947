"""SpinKube's CRDs as objects, and the schema validation and defaulting built from them.

    definitions   the CRDs (structural OpenAPI v3 schemas)
    validation    OpenAPI → JSON Schema, compiled validators, CRD defaulting
"""

from __future__ import annotations

from renderers.crds.definitions import all_crds
from renderers.crds.validation import apply_defaults, validate

__all__ = ["all_crds", "apply_defaults", "validate"]
