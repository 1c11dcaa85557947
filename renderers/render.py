"""The render pipeline: a classified repo (+ Nodes, settings) → the objects to apply.

    RepoTree ──► CRDs
             ├─► SpinAppExecutors: schema + webhook rules, indexed by namespace
             ├─► SpinApps (from YAML and scaffolded from Spin projects) ──► Secrets, Deployment,
             │   Service (+ one `spin-ca` per namespace that needs it)
             ├─► Shims, Nodes ──► RuntimeClass, installer Jobs
             └─► other objects, passed through
         ──► spindle's label and source annotation on each ──► duplicate check ──► apply order

Errors are collected, never raised: an app that fails leaves out only its own objects.
"""

from __future__ import annotations

import base64
import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from renderers import crds
from renderers.errors import DocumentError, DuplicateObjectError, Location, RenderError, SchemaError
from renderers.meta import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SHIM_API_VERSION,
    SOURCE_PATH_ANNOTATION,
    SPINAPP_API_VERSION,
    spinkube_kind_problem,
)
from renderers.model import Obj, RepoTree, SourceDoc
from renderers.settings import DEFAULT_SETTINGS, RenderSettings
from renderers.shim import render_shims
from renderers.spinapp import ExecutorIndex, ObjectIndex, ValueLookup, index_executors, render_spinapp
from renderers.spinapp.cacerts import bundle_b64
from renderers.spinapp.workload import CA_SECRET_NAME, ca_secret

BUILTIN_CRDS_PATH = "(spindle) crds"
CA_SOURCE_PREFIX = "(spindle) spin-ca"

# Apply order; kinds not listed go after all of these, by group/kind.
KIND_ORDER: tuple[str, ...] = (
    "CustomResourceDefinition",
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "PriorityClass",
    "RuntimeClass",
    "StorageClass",
    "IngressClass",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Secret",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Service",
    "DaemonSet",
    "Deployment",
    "StatefulSet",
    "ReplicaSet",
    "Pod",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
    "NetworkPolicy",
    "Shim",
    "SpinAppExecutor",
    "SpinApp",
)
_RANK = {kind: i for i, kind in enumerate(KIND_ORDER)}

# Kinds without a namespace; every other kind defaults to the settings' namespace.
CLUSTER_SCOPED = frozenset(
    {
        "CustomResourceDefinition",
        "Namespace",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "IngressClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
        "Node",
        "Shim",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "APIService",
        "CSIDriver",
        "VolumeAttachment",
        "CertificateSigningRequest",
        "ClusterIssuer",
    }
)


@dataclass
class RenderResult:
    objects: list[Obj] = field(default_factory=list)
    errors: list[RenderError] = field(default_factory=list)
    # Valid Spin projects with no [application.tool.spindle] table: checked but not deployed.
    # (spin.toml path, app name)
    undeployed: list[tuple[str, str]] = field(default_factory=list)


def namespace_of(obj: Obj, settings: RenderSettings) -> str:
    if obj.get("kind") in CLUSTER_SCOPED:
        return ""
    return str((obj.get("metadata") or {}).get("namespace") or settings.default_namespace)


def _mark(obj: Obj, source_path: str) -> Obj:
    """A copy of `obj` (shallow, new metadata) with spindle's label and source annotation."""
    meta = dict(obj.get("metadata") or {})
    meta["labels"] = {**(meta.get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    meta["annotations"] = {**(meta.get("annotations") or {}), SOURCE_PATH_ANNOTATION: source_path}
    return {**obj, "metadata": meta}


def sort_key(obj: Obj) -> tuple[int, str, str, str, str]:
    kind = str(obj.get("kind", ""))
    meta = obj.get("metadata") or {}
    api_version = str(obj.get("apiVersion", ""))
    return (
        _RANK.get(kind, len(KIND_ORDER)),
        api_version if kind not in _RANK else "",
        kind,
        str(meta.get("namespace") or ""),
        str(meta.get("name", "")),
    )


class _Collector:
    """Keeps the first object of each Kind/namespace/name; a second one is an error."""

    def __init__(self, settings: RenderSettings) -> None:
        self.settings = settings
        self.objects: list[Obj] = []
        self.errors: list[RenderError] = []
        self._seen: dict[tuple[str, str, str, str], str] = {}

    def add(self, obj: Obj, source_path: str, subject: str | None = None, line: int | None = None) -> None:
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        namespace = namespace_of(obj, self.settings)
        name = str((obj.get("metadata") or {}).get("name", ""))
        key = (group, str(obj.get("kind", "")), namespace, name)
        first = self._seen.get(key)
        if first is not None:
            what = f"{key[1]}/{namespace}/{name}" if namespace else f"{key[1]}/{name}"
            self.errors.append(
                DuplicateObjectError(
                    f"{what} is defined twice: in {first} and in {source_path}",
                    Location(source_path, line, "metadata.name"),
                    subject or what,
                )
            )
            return
        self._seen[key] = source_path
        self.objects.append(_mark(obj, source_path))

    def add_source(self, doc: SourceDoc) -> None:
        """A repo document itself (a SpinApp, executor, Shim or pass-through object)."""
        self.add(doc.body, doc.location.path, doc.subject, doc.line_of("metadata.name"))


def unknown_spinkube_kind(doc: SourceDoc) -> DocumentError | None:
    """Discovery already keeps these out; trees built by other callers are checked again."""
    problem = spinkube_kind_problem(doc.api_version, doc.kind)
    return None if problem is None else DocumentError(problem, doc.at("apiVersion"), doc.subject)


# The fields of ObjectMeta (k8s.io/apimachinery meta/v1).
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})


def metadata_problem(doc: SourceDoc) -> DocumentError | None:
    """ObjectMeta basics the API server would reject, checked before anything reads them."""
    meta = doc.body.get("metadata")
    if not isinstance(meta, dict):
        return DocumentError("metadata must be a mapping", doc.at("metadata"), doc.kind)
    for key in meta:
        if key not in OBJECT_META_FIELDS:
            # Strict field validation rejects it at apply; a misspelt namespace would first
            # have sent the object to the default namespace in every diff.
            close = difflib.get_close_matches(str(key), sorted(OBJECT_META_FIELDS), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            where = doc.at(f"metadata.{key}")
            return DocumentError(f"unknown field metadata.{key}{hint}", where, doc.subject)
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        return DocumentError("metadata.namespace must be a string", doc.at("metadata.namespace"), doc.subject)
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            return DocumentError(f"metadata.{key} must be a mapping", doc.at(f"metadata.{key}"), doc.subject)
        for name, item in value.items():
            if not isinstance(name, str) or not isinstance(item, str):
                token = json.dumps(item) if isinstance(item, bool | int | float) or item is None else "it"
                return DocumentError(
                    f'metadata.{key} keys and values must be strings: quote {token} as "{token}"',
                    doc.at(f"metadata.{key}.{name}"),
                    doc.subject,
                )
    return None


# The API server's limit on a Secret's or ConfigMap's data (core.MaxSecretSize).
MAX_DATA_SIZE = 1024 * 1024


def _decoded_size(value: Any) -> int:
    """The length of base64 `value` once decoded (its text length when it is not base64: the API
    server will say so itself)."""
    text = str(value)
    try:
        return len(base64.b64decode(text, validate=True))
    except ValueError:
        return len(text)


def _data_size(body: Obj) -> int:
    data, binary = body.get("data"), body.get("binaryData")
    data = data if isinstance(data, dict) else {}
    binary = binary if isinstance(binary, dict) else {}
    if body.get("kind") == "Secret":
        strings = body.get("stringData")
        merged = {key: _decoded_size(value) for key, value in data.items()}
        if isinstance(strings, dict):  # stringData overwrites data keys on the server
            merged.update({key: len(str(value).encode()) for key, value in strings.items()})
        return sum(merged.values())
    return sum(len(str(k)) + len(str(v).encode()) for k, v in data.items()) + sum(
        len(str(k)) + _decoded_size(v) for k, v in binary.items()
    )


def size_problem(doc: SourceDoc) -> DocumentError | None:
    """A v1 Secret or ConfigMap holding more than the API server stores."""
    if doc.api_version != "v1" or doc.kind not in ("Secret", "ConfigMap"):
        return None
    size = _data_size(doc.body)
    if size <= MAX_DATA_SIZE:
        return None
    return DocumentError(
        f"{doc.kind} data is {size} bytes; the API server stores at most {MAX_DATA_SIZE} bytes (1 MiB) "
        "in one object: split it, or mount the content from the image or a volume",
        doc.at("data" if "data" in doc.body else "stringData" if "stringData" in doc.body else "binaryData"),
        doc.subject,
    )


_DATA_FIELDS = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}


def data_problems(doc: SourceDoc) -> list[DocumentError]:
    """Every non-string value in a v1 ConfigMap's or Secret's data maps (`PORT: 8080`): the API
    server rejects the whole object."""
    if doc.api_version != "v1" or doc.kind not in _DATA_FIELDS:
        return []
    problems = []
    for section in _DATA_FIELDS[doc.kind]:
        values = doc.body.get(section)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if isinstance(value, str) or value is None:  # null decodes to "" in Go
                continue
            token = json.dumps(value) if isinstance(value, bool | int | float) else "it"
            problems.append(DocumentError(
                f'{doc.kind} {section} values must be strings: quote {token} as "{token}"',
                doc.at(f"{section}.{key}"),
                doc.subject,
            ))
    return problems


def _sound(docs: Iterable[SourceDoc], errors: list[RenderError]) -> list[SourceDoc]:
    kept = []
    for doc in docs:
        problem = metadata_problem(doc)
        problems = [problem] if problem else data_problems(doc)
        size = None if problems else size_problem(doc)
        if size:
            problems.append(size)
        if problems:
            errors.extend(problems)
        else:
            kept.append(doc)
    return kept


def _is_spinapp(doc: SourceDoc) -> bool:
    return doc.kind == "SpinApp" and doc.api_version == SPINAPP_API_VERSION


def render(
    tree: RepoTree,
    nodes: Sequence[Obj] = (),
    settings: RenderSettings = DEFAULT_SETTINGS,
    lookup: ValueLookup | None = None,
    retired_shims: Sequence[Obj] = (),
) -> RenderResult:
    """Render a classified repo. `lookup` resolves runtimeConfig `valueFrom` references
    (default: the repo's own Secrets/ConfigMaps); `retired_shims` are Shims that left Git."""
    errors: list[RenderError] = list(tree.errors)
    out = _Collector(settings)
    others, scaffolded = _sound(tree.others, errors), _sound(tree.scaffolded, errors)
    passthrough = [*others, *(d for d in scaffolded if not _is_spinapp(d))]
    apps = [*_sound(tree.spinapps, errors), *(d for d in scaffolded if _is_spinapp(d))]
    if lookup is None:
        lookup = ObjectIndex((d.body for d in passthrough), settings.default_namespace)

    if settings.include_crds:
        for crd in crds.all_crds():
            out.add(crd, BUILTIN_CRDS_PATH)

    executor_docs = [(d, d.namespace or settings.default_namespace) for d in _sound(tree.executors, errors)]
    executors, executor_errors = index_executors(executor_docs)
    errors.extend(executor_errors)
    if settings.include_sources:
        for doc in executors.accepted:
            out.add_source(doc)
    _add_apps(apps, executors, lookup, out, errors)
    _add_shims(_sound(tree.shims, errors), nodes, retired_shims, out, errors)
    for doc in passthrough:
        problem = unknown_spinkube_kind(doc)
        if problem is not None:
            errors.append(problem)
            continue
        out.add_source(doc)

    errors.extend(out.errors)
    undeployed = sorted((p.location.path, p.app.name) for p in tree.projects if p.app.spindle is None)
    return RenderResult(sorted(out.objects, key=sort_key), _sorted_errors(errors), undeployed)


def _add_apps(
    apps: Sequence[SourceDoc], executors: ExecutorIndex, lookup: ValueLookup, out: _Collector,
    errors: list[RenderError],
) -> None:
    """Each SpinApp's objects (an app with errors adds none), then the CA Secrets they need."""
    settings = out.settings
    ca_secrets: set[tuple[str, str]] = set()
    app_paths: dict[tuple[str, str], str] = {}
    for doc in sorted(apps, key=lambda d: (d.location.path, d.location.line or 0)):
        namespace = doc.namespace or settings.default_namespace
        first = app_paths.get((namespace, doc.name))
        if first is None:
            app_paths[(namespace, doc.name)] = doc.location.path
        else:
            # Report once for the app, rather than once per colliding child object.
            errors.append(
                DuplicateObjectError(
                    f"SpinApp {namespace}/{doc.name} is defined twice: in {first} and in {doc.location.path}",
                    doc.at("metadata.name"),
                    doc.subject,
                )
            )
            continue
        rendering = render_spinapp(doc, namespace, executors, lookup)
        if rendering.errors:
            errors.extend(rendering.errors)
            continue
        if settings.include_sources:
            out.add_source(doc)
        for obj in rendering.objects:
            out.add(obj, doc.location.path, doc.subject)
        if rendering.ca_secret:
            ca_secrets.add(rendering.ca_secret)

    # The operator creates the CA Secret only when it is missing: a committed one wins.
    bundle = bundle_b64() if ca_secrets else ""
    for namespace, name in sorted(ca_secrets):
        if lookup.get("Secret", namespace, name) is None:
            out.add(ca_secret(namespace, name, bundle), ca_source(namespace, name))


def _add_shims(
    shim_sources: Sequence[SourceDoc], nodes: Sequence[Obj], retired: Sequence[Obj], out: _Collector,
    errors: list[RenderError],
) -> None:
    shim_docs = [d for d in shim_sources if d.api_version == SHIM_API_VERSION]
    shims = render_shims(shim_docs, nodes, out.settings, retired)
    errors.extend(shims.errors)
    # Shims whose schema or name failed are left out (a NodePlatformError only drops a Job).
    failing = (SchemaError, DuplicateObjectError)
    failed = {(e.obj, e.location.path) for e in shims.errors if isinstance(e, failing)}
    if out.settings.include_sources:
        for doc in shim_docs:
            if (doc.subject, doc.location.path) not in failed:
                out.add_source(doc)
    for obj, path in shims.objects:
        out.add(obj, path)


def ca_source(namespace: str, name: str) -> str:
    """The source annotation of a generated CA Secret (the reconciler keys on its prefix)."""
    named = "" if name == CA_SECRET_NAME else f" as {name}"
    return f"{CA_SOURCE_PREFIX}{named} for namespace {namespace}"


def _sorted_errors(errors: Iterable[RenderError]) -> list[RenderError]:
    return sorted(
        errors, key=lambda e: (e.location.path, e.location.line or 0, e.location.field or "", e.message)
    )


def render_checkout(
    root: Path,
    subpath: str | None = None,
    nodes: Sequence[Obj] = (),
    settings: RenderSettings = DEFAULT_SETTINGS,
    lookup: ValueLookup | None = None,
    retired_shims: Sequence[Obj] = (),
) -> RenderResult:
    """Discover and render a checkout in one call (what `spindle render` and the reconciler do).

    Raises FileNotFoundError when `root`/`subpath` is not a directory of the checkout."""
    from renderers.discovery import discover  # the walk is only needed here

    return render(discover(root, subpath), nodes, settings, lookup, retired_shims)
