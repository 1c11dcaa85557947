"""SpinApp → the objects spin-operator would create for it.

    defaults (CRD) → mutating webhook (executor) → validating webhooks → runtime config →
    Deployment, Service, runtime-config Secret; plus the CA Secret the namespace needs, if any.

Modules: `webhook` (admission rules), `runtimeconfig` (the generated TOML and its Secret name),
`gotoml` (go-toml/v2's exact bytes), `workload` (Deployment/Service/Secret builders), `cacerts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from renderers import crds
from renderers.errors import DuplicateObjectError, RenderError, WebhookRuleError
from renderers.model import Obj, SourceDoc
from renderers.spinapp import runtimeconfig, webhook, workload
from renderers.spinapp.runtimeconfig import ObjectIndex, ValueLookup

__all__ = ["AppRendering", "ExecutorIndex", "ObjectIndex", "ValueLookup", "render_spinapp"]


@dataclass
class ExecutorIndex:
    """The repo's SpinAppExecutors by (namespace, name): valid ones with their defaulted spec,
    and the names of invalid ones (so an app can say why its executor is unusable)."""

    valid: dict[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)
    invalid: set[tuple[str, str]] = field(default_factory=set)
    # The documents behind `valid`, in input order.
    accepted: list[SourceDoc] = field(default_factory=list)

    def names(self) -> Iterable[str]:
        return {name for _, name in (*self.valid, *self.invalid)}


@dataclass
class AppRendering:
    objects: list[Obj] = field(default_factory=list)
    # (namespace, name) of the CA Secret the operator would create with its default bundle
    # (`installDefaultCACerts`), if any.
    ca_secret: tuple[str, str] | None = None
    errors: list[RenderError] = field(default_factory=list)


def render_spinapp(
    doc: SourceDoc, namespace: str, executors: ExecutorIndex, lookup: ValueLookup
) -> AppRendering:
    schema_errors = crds.validate(doc)
    if schema_errors:
        return AppRendering(errors=list(schema_errors))
    body = crds.apply_defaults(doc.body)
    spec: Mapping[str, Any] = body.get("spec") or {}
    app = doc.name

    executor_name, defaulted = webhook.default_executor(spec, executors.names())
    executor_spec = executors.valid.get((namespace, executor_name))
    if executor_spec is None and (namespace, executor_name) in executors.invalid:
        return AppRendering(
            errors=[
                WebhookRuleError(
                    f"SpinAppExecutor {namespace}/{executor_name} is invalid (see its errors)",
                    doc.at("spec.executor"),
                    doc.subject,
                )
            ]
        )
    rule_errors = webhook.check_spinapp(
        doc, spec, namespace, executor_name, defaulted, executor_spec, {*executors.valid, *executors.invalid}
    )
    if rule_errors or executor_spec is None:
        return AppRendering(errors=list(rule_errors))

    result = AppRendering()
    if executor_spec.get("createDeployment"):
        config: Mapping[str, Any] = executor_spec.get("deploymentConfig") or {}
        toml, ref_errors = runtimeconfig.build(doc, spec, namespace, lookup)
        if ref_errors:
            return AppRendering(errors=list(ref_errors))
        runtime_secret = (spec.get("runtimeConfig") or {}).get("loadFromSecret")
        if toml is not None:
            runtime_secret = runtimeconfig.secret_name(app, toml)
            result.objects.append(workload.runtime_config_secret(app, namespace, runtime_secret, toml))
        # As the operator: `caCertSecret` is mounted; with `installDefaultCACerts` it is also
        # created (default name `spin-ca`) with the built-in bundle when missing.
        ca_secret = config.get("caCertSecret") or None
        if config.get("installDefaultCACerts"):
            ca_secret = ca_secret or workload.CA_SECRET_NAME
            result.ca_secret = (namespace, ca_secret)
        result.objects.append(workload.deployment(app, namespace, spec, config, runtime_secret, ca_secret))
    result.objects.append(workload.service(app, namespace, spec))
    return result


def index_executors(docs: Iterable[tuple[SourceDoc, str]]) -> tuple[ExecutorIndex, list[RenderError]]:
    """Validate executors (schema + webhook) and index them by (namespace, name)."""
    index = ExecutorIndex()
    errors: list[RenderError] = []
    seen: dict[tuple[str, str], str] = {}
    for doc, namespace in docs:
        first = seen.get((namespace, doc.name))
        if first is not None:
            errors.append(
                DuplicateObjectError(
                    f"SpinAppExecutor {namespace}/{doc.name} is defined twice: in {first} and in "
                    f"{doc.location.path}",
                    doc.at("metadata.name"),
                    doc.subject,
                )
            )
            continue
        seen[(namespace, doc.name)] = doc.location.path
        problems: list[RenderError] = list(crds.validate(doc))
        spec: Mapping[str, Any] = {}
        if not problems:
            spec = crds.apply_defaults(doc.body).get("spec") or {}
            problems.extend(webhook.check_executor(doc, spec))
        if problems:
            errors.extend(problems)
            index.invalid.add((namespace, doc.name))
        else:
            index.valid[(namespace, doc.name)] = spec
            index.accepted.append(doc)
    return index, errors
