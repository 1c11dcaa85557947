"""spin-operator's admission webhooks, applied to the repo instead of a live cluster.

The mutating SpinApp webhook fills an empty `spec.executor` with the alphabetically smallest
SpinAppExecutor name across *all* namespaces; the validating one then requires that executor to
exist in the app's own namespace. spindle does the same over the executors in the repo, so an
app can be defaulted to an executor of another namespace and then rejected, exactly as the
operator would; the error says so.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from renderers.errors import WebhookRuleError
from renderers.model import SourceDoc
from renderers.quantity import QuantityError, parse_quantity

# The Service is named after the app, so the name must be a DNS-1035 label.
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# The status label key `core.spinkube.dev/app.<app>.status` has a 63-character name part.
MAX_APP_NAME = 63 - len("app..status")


def default_executor(spec: Mapping[str, Any], executor_names: Iterable[str]) -> tuple[str, bool]:
    """(executor name, whether the mutating webhook chose it)."""
    current = str(spec.get("executor") or "")
    if current:
        return current, False
    names = sorted(executor_names)
    return (names[0], True) if names else ("", False)


def _where_hint(namespace: str, name: str, known: Iterable[tuple[str, str]]) -> str:
    """Where the repo does define that executor, or the close name in the app's namespace."""
    known = sorted(known)
    elsewhere = [ns for ns, n in known if n == name and ns != namespace]
    if elsewhere:
        return f" (the repo defines {name} only in namespace {', '.join(elsewhere)})"
    close = difflib.get_close_matches(name, [n for ns, n in known if ns == namespace], n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_spinapp(
    doc: SourceDoc,
    spec: Mapping[str, Any],
    namespace: str,
    executor_name: str,
    defaulted: bool,
    executor_spec: Mapping[str, Any] | None,
    known_executors: Iterable[tuple[str, str]] = (),
) -> list[WebhookRuleError]:
    """The validating webhook's rules for a SpinApp; `known_executors` are the (namespace, name)
    of every executor in the repo, for a hint when the app's one is missing."""
    errors: list[WebhookRuleError] = []

    def fail(field: str, message: str) -> None:
        errors.append(WebhookRuleError(message, doc.at(field), doc.subject))

    if not _DNS1035.match(doc.name):
        fail(
            "metadata.name",
            f"SpinApp name {doc.name!r} is not a DNS-1035 label (lowercase letters, "
            "digits and '-', starting with a letter): the operator names the Service after it",
        )
    elif len(doc.name) > MAX_APP_NAME:
        fail(
            "metadata.name",
            f"SpinApp names longer than {MAX_APP_NAME} characters make the label "
            f"core.spinkube.dev/app.<name>.status invalid",
        )
    if not executor_name:
        fail("spec.executor", "executor must be set; there is no SpinAppExecutor in the repo to default to")
    elif executor_spec is None:
        how = (
            " (defaulted by the mutating webhook to the first executor name in any namespace)"
            if defaulted
            else ""
        )
        fail(
            "spec.executor",
            f"SpinAppExecutor {namespace}/{executor_name} does not exist in the app's "
            f"namespace{how}; executors are namespaced, define one in {namespace}"
            + _where_hint(namespace, executor_name, known_executors)
            + (
                f"; or change executor (now {executor_name}) or namespace in [application.tool.spindle]"
                if doc.location.path.endswith("spin.toml")  # scaffolded from a Spin project
                else ""
            ),
        )

    autoscaling = bool(spec.get("enableAutoscaling"))
    replicas = spec.get("replicas")
    if autoscaling and replicas not in (None, 0):
        fail("spec.replicas", "replicas cannot be set when enableAutoscaling is true")
    if not autoscaling and (not isinstance(replicas, int) or replicas < 1):
        fail("spec.replicas", "replicas must be >= 1 when enableAutoscaling is false")

    if executor_spec is not None and not executor_spec.get("createDeployment"):
        for field in ("deploymentAnnotations", "podAnnotations"):
            if spec.get(field):
                fail(
                    f"spec.{field}",
                    f"{field} can't be set when the executor "
                    f"{executor_name!r} does not create Deployments (createDeployment: false)",
                )

    errors.extend(_check_memory(doc, spec))
    return errors


def _check_memory(doc: SourceDoc, spec: Mapping[str, Any]) -> list[WebhookRuleError]:
    memory = (spec.get("invocationLimits") or {}).get("memory")
    if memory is None:
        return []
    field = "spec.invocationLimits.memory"
    try:
        limit = parse_quantity(memory)
    except QuantityError as exc:
        return [WebhookRuleError(f"invalid memory invocation limit: {exc}", doc.at(field), doc.subject)]
    resources = spec.get("resources") or {}
    for source in ("limits", "requests"):
        container = (resources.get(source) or {}).get("memory")
        if container is None:
            continue
        try:
            container_value: Fraction = parse_quantity(container)
        except QuantityError:
            return []  # the schema check reports the malformed quantity
        if limit > container_value:
            return [
                WebhookRuleError(
                    f"memory invocation limit {memory} is larger than the memory {source[:-1]} {container}",
                    doc.at(field),
                    doc.subject,
                )
            ]
        return []
    return []


def check_executor(doc: SourceDoc, spec: Mapping[str, Any]) -> list[WebhookRuleError]:
    config = spec.get("deploymentConfig")
    if config is None:
        if spec.get("createDeployment"):
            return [
                WebhookRuleError(
                    "createDeployment is true but deploymentConfig is missing (spin-operator would crash)",
                    doc.at("spec.deploymentConfig"),
                    doc.subject,
                )
            ]
        return []
    # The webhook tests the Go pointers: a field that is present counts, even when empty.
    has_class, has_image = config.get("runtimeClassName") is not None, config.get("spinImage") is not None
    if has_class == has_image:
        message = (
            "runtimeClassName and spinImage are mutually exclusive"
            if has_class
            else "either runtimeClassName or spinImage must be set"
        )
        return [WebhookRuleError(message, doc.at("spec.deploymentConfig.runtimeClassName"), doc.subject)]
    name = "runtimeClassName" if has_class else "spinImage"
    if not config[name]:
        # The webhook lets an empty value through, but the API server rejects an empty
        # runtimeClassName on the Pod, and `spin up` would have no image to run.
        field = f"spec.deploymentConfig.{name}"
        return [WebhookRuleError(f"{name} must not be empty", doc.at(field), doc.subject)]
    return []
