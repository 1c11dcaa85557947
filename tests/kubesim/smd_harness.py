"""Runs structured-merge-diff's merge test cases against kubesim.

A case is ported from sigs.k8s.io/structured-merge-diff ``merge/*_test.go`` (``fixture.TestCase``):
a list of operations (``Apply``, ``ForceApply``, ``Update``) by named managers at API versions, the
conflicts an operation must raise, and the object and managed field sets expected at the end.

The test's type becomes the schema of a custom resource: a CustomResourceDefinition whose
``openAPIV3Schema`` reproduces the type's list and map semantics (associative lists without keys
are ``x-kubernetes-list-type: set``, with keys ``map``; maps with an ``elementType`` are
``additionalProperties``; ``elementRelationship: atomic`` is ``x-kubernetes-map-type: atomic``),
served at versions v1..v4 with the same schema (the fixture's ``SameVersionParser``). The case's
object is the custom object's content beside ``apiVersion``, ``kind`` and ``metadata``.

Two runners:

``run_engine``  the pure engine (``kubesim.ssa``) with the schema kubesim builds from the CRD;
``run_server``  the same operations as HTTP requests to a running kubesim (apply patches and
                PUTs with ``fieldManager``), the CRD created first.

Expected managed sets are written as SMD prints paths (``fieldpath.Path.String``), e.g.
``.list[name="a"].value``, ``.list[="b"]``, ``.mapOfMaps.a.c``; conflicts as (manager, path).
"""

from __future__ import annotations

import copy
import json
import textwrap
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubesim import schema as kschema
from kubesim import ssa
from kubesim.ssa import fieldpath as fp
from kubesim.ssa.compare import compare

GROUP = "smd.kubesim.test"
VERSIONS = ("v1", "v2", "v3", "v4")
NOW = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class Apply:
    manager: str
    api_version: str
    object: str
    #: (manager, path) pairs the apply must conflict with (then nothing changes).
    conflicts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ForceApply:
    manager: str
    api_version: str
    object: str


@dataclass(frozen=True)
class Update:
    manager: str
    api_version: str
    object: str


Op = Apply | ForceApply | Update


@dataclass(frozen=True)
class Case:
    name: str
    ops: tuple[Op, ...]
    #: The expected object (YAML), or None when the upstream case does not say.
    object: str | None
    #: manager -> (apiVersion, paths); None when the upstream case does not check managers.
    managed: dict[str, tuple[str, tuple[str, ...]]] | None = None
    #: Why the case does not run through the HTTP server ("" = it does).
    engine_only: str = ""
    #: Where the expectation differs from the v4 test's, and why.
    note: str = ""


@dataclass
class Type:
    """One SMD parser's root type as a CRD: kind, plural and the openAPIV3Schema."""

    kind: str
    plural: str
    schema: dict[str, Any]
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def crd(self) -> dict[str, Any]:
        versions = [
            {"name": v, "served": True, "storage": v == "v1", "schema": {"openAPIV3Schema": self.schema}}
            for v in VERSIONS
        ]
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{self.plural}.{GROUP}"},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {"plural": self.plural, "kind": self.kind},
                "versions": versions,
            },
        }

    def schemas(self) -> dict[str, kschema.ResourceSchema]:
        return {s.gvk.version: s for s in kschema.crd_schemas(self.crd())}


# --- schema pieces (SMD atoms as OpenAPI) ---------------------------------------------------------

STRING: dict[str, Any] = {"type": "string"}
NUMERIC: dict[str, Any] = {"type": "number"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
UNTYPED: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


def struct(**fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": dict(fields)}


def atomic_struct(**fields: dict[str, Any]) -> dict[str, Any]:
    return {**struct(**fields), "x-kubernetes-map-type": "atomic"}


def map_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": item}


def set_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "x-kubernetes-list-type": "set", "items": item}


def list_map(item: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": list(keys),
        "items": item,
    }


def atomic_list(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def recursive_map(depth: int = 8) -> dict[str, Any]:
    """SMD's self-referential ``mapOfMapsRecursive``, unrolled (a CRD schema cannot recurse); the
    innermost level is untyped, whose maps are granular as well."""
    node: dict[str, Any] = {"type": "object", **UNTYPED}
    for _ in range(depth):
        node = map_of(node)
    return node


def root(**fields: dict[str, Any]) -> dict[str, Any]:
    return struct(**fields)


# --- running ------------------------------------------------------------------------------------


def load(text: str) -> dict[str, Any]:
    obj = yaml.safe_load(textwrap.dedent(text)) if text.strip() else None
    return dict(obj or {})


def _body(t: Type, api_version: str, text: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{api_version}",
        "kind": t.kind,
        "metadata": {"name": name, "namespace": "default"},
        **load(text),
    }


def content(obj: dict[str, Any]) -> dict[str, Any]:
    """The case's part of a custom object (what SMD's typed value holds)."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}


def managed_paths(obj: dict[str, Any]) -> dict[str, tuple[str, frozenset[str]]]:
    """manager -> (apiVersion without group, printed paths), merging a manager's entries."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for e in obj.get("metadata", {}).get("managedFields") or []:
        paths = frozenset(fp.path_string(p) for p in fp.iter_paths(fp.decode_fields_v1(e["fieldsV1"])))
        version = e["apiVersion"].rpartition("/")[2]
        prev = out.get(e["manager"])
        out[e["manager"]] = (version, paths | (prev[1] if prev else frozenset()))
    return out


def check(case: Case, obj: dict[str, Any] | None, schema: kschema.ResourceSchema) -> None:
    """As the fixture does: the live object compares the same as the expected one (SMD ``Compare``,
    so the order of set and list-map items does not matter), and the managers own the paths."""
    final = obj or {}
    if case.object is not None:
        got, want = content(final), load(case.object)
        assert compare(got, want, schema.root).is_same(), f"{case.name}: object {got} != {want}"
    if case.managed is not None:
        want = {m: (v, frozenset(ps)) for m, (v, ps) in case.managed.items()}
        assert managed_paths(final) == want, f"{case.name}: managed fields"


def run_engine(t: Type, case: Case) -> None:
    schemas = t.schemas()
    live: dict[str, Any] | None = None
    for i, op in enumerate(case.ops):
        schema = schemas[op.api_version]
        body = _body(t, op.api_version, op.object, "x")
        if isinstance(op, Update):
            if live is not None:
                body["metadata"] = copy.deepcopy(live["metadata"])
            live = ssa.update(
                live, body, manager=op.manager, api_version=schema.api_version, schema=schema, now=NOW
            ).object
            continue
        force = isinstance(op, ForceApply)
        expected = () if isinstance(op, ForceApply) else op.conflicts
        try:
            result = ssa.apply(
                live,
                body,
                manager=op.manager,
                api_version=schema.api_version,
                force=force,
                schema=schema,
                now=NOW,
            )
        except ssa.ConflictError as err:
            got = {(c.manager, c.field) for c in err.conflicts}
            assert got == set(expected), f"{case.name} op {i}: conflicts {got}"
            continue
        assert not expected, f"{case.name} op {i}: expected conflicts {expected}"
        live = result.object
    check(case, live, schemas[case.ops[-1].api_version])


def run_server(client: Any, t: Type, case: Case, name: str) -> None:
    """The case as HTTP requests; the CRD must exist (see `Type.crd`)."""
    base = f"/apis/{GROUP}/{{v}}/namespaces/default/{t.plural}/{name}"
    live: dict[str, Any] | None = None
    for i, op in enumerate(case.ops):
        path = base.format(v=op.api_version)
        body = _body(t, op.api_version, op.object, name)
        if isinstance(op, Update):
            if live is None:
                code, got = client.request(
                    "POST", path.rpartition("/")[0] + f"?fieldManager={op.manager}", body
                )
                assert code == 201, (case.name, i, got)
            else:
                body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                code, got = client.request("PUT", path + f"?fieldManager={op.manager}", body)
                assert code == 200, (case.name, i, got)
            live = got
            continue
        force = "&force=true" if isinstance(op, ForceApply) else ""
        expected = () if isinstance(op, ForceApply) else op.conflicts
        code, got = client.request(
            "PATCH",
            path + f"?fieldManager={op.manager}{force}",
            json.dumps(body),
            "application/apply-patch+yaml",
        )
        if expected:
            assert code == 409, (case.name, i, got)
            fields = {c["field"] for c in got["details"]["causes"]}
            assert fields == {p for _, p in expected}, (case.name, i, got)
            continue
        assert code in (200, 201), (case.name, i, got)
        live = got
    check(case, live, t.schemas()["v1"])
