"""Label and annotation keys spindle writes, and the ones SpinKube's operators use.

Kept in one module so the renderers, the reconciler and the tests agree on every key.
"""

from __future__ import annotations

# spindle's own marks on every rendered object.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "spindle"
SOURCE_PATH_ANNOTATION = "spindle.dev/source-path"

# spin-operator (pkg/spinapp, internal/constants).
SPINAPP_NAME_LABEL = "core.spinkube.dev/app-name"
SPINAPP_STATUS_LABEL_TEMPLATE = "core.spinkube.dev/app.{app}.status"
SPINAPP_STATUS_READY = "ready"
SPIN_OPERATOR_MANAGED_BY = "spin-operator.spinkube.dev"

# runtime-class-manager (shim_controller.go).
RCM_NODE_NAME_KEY = "spinkube.dev/nodeName"
RCM_SHIM_NAME_KEY = "spinkube.dev/shimName"
RCM_OPERATION_KEY = "spinkube.dev/operation"
RCM_JOB_KEY = "spinkube.dev/job"

SPINAPP_GROUP = "core.spinkube.dev"
SHIM_GROUP = "runtime.spinkube.dev"
SPINAPP_API_VERSION = f"{SPINAPP_GROUP}/v1alpha1"
SHIM_API_VERSION = f"{SHIM_GROUP}/v1alpha1"


def status_label(app: str) -> str:
    return SPINAPP_STATUS_LABEL_TEMPLATE.format(app=app)
