"""The type graph that server-side apply walks, and the per-resource schema that carries it.

A :class:`TypeNode` is the structured-merge-diff "atom" of one field: a scalar, a struct (named
fields), a map (string keys, one value type), a list (atomic / set / map with keys) or an
untyped value (CRD ``x-kubernetes-preserve-unknown-fields`` or ``object`` in the OpenAPI; lists
inside are atomic, maps granular, as SMD's "deduced" type).  Nodes are shared and may form
cycles (JSONSchemaProps), so never walk the graph without a value to guide you.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class NodeType(enum.Enum):
    SCALAR = "scalar"
    STRUCT = "struct"
    MAP = "map"
    LIST = "list"
    UNTYPED = "untyped"


class ListType(enum.Enum):
    ATOMIC = "atomic"
    SET = "set"
    MAP = "map"


class MapType(enum.Enum):
    GRANULAR = "granular"
    ATOMIC = "atomic"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Sentinel for "no default declared" (``None`` is a legal JSON default)."""


class TypeNode:
    """One node of the type graph.  Mutable only while a schema is being built."""

    __slots__ = (
        "default",
        "defaulting",
        "description",
        "enum",
        "field_descriptions",
        "field_patch_strategies",
        "fields",
        "format",
        "has_defaults",
        "item",
        "keys",
        "list_type",
        "map_type",
        "name",
        "patch_merge_key",
        "patch_strategy",
        "present_fields",
        "preserve_unknown",
        "required",
        "scalar",
        "type",
    )

    def __init__(
        self,
        node_type: NodeType,
        *,
        name: str = "",
        fields: dict[str, TypeNode] | None = None,
        item: TypeNode | None = None,
        list_type: ListType = ListType.ATOMIC,
        keys: tuple[str, ...] = (),
        map_type: MapType = MapType.GRANULAR,
        scalar: str = "string",
        default: Any = MISSING,
        description: str = "",
        preserve_unknown: bool = False,
    ) -> None:
        self.type = node_type
        #: OpenAPI definition name for named types (``io.k8s.api.core.v1.Container``), else "".
        self.name = name
        #: STRUCT: named fields.
        self.fields: dict[str, TypeNode] = fields if fields is not None else {}
        #: LIST: the item type; MAP: the value type.
        self.item = item
        self.list_type = list_type
        #: LIST with list_type MAP: the key fields, in declaration order.
        self.keys = keys
        #: STRUCT / MAP: atomic (owned and replaced as one value) or granular.
        self.map_type = map_type
        #: SCALAR: OpenAPI primitive: string, integer, number, boolean, int-or-string, quantity.
        self.scalar = scalar
        #: JSON default applied when the parent exists and the field is absent (also keys list items).
        self.default = default
        self.description = description
        #: STRUCT: unknown fields are kept (and treated as untyped) rather than dropped.
        self.preserve_unknown = preserve_unknown
        #: STRUCT: fields that are Go non-pointer structs, always serialised (at least ``{}``).
        self.present_fields: frozenset[str] = frozenset()
        self.required: tuple[str, ...] = ()
        #: STRUCT: per-field documentation (a shared named type cannot carry its use's text).
        self.field_descriptions: dict[str, str] = {}
        #: STRUCT: ``patchStrategy`` of non-list fields (``retainKeys`` on DeploymentSpec.strategy).
        self.field_patch_strategies: dict[str, str] = {}
        #: Cache of "can defaulting add anything below this node" (None: not computed yet).
        self.has_defaults: bool | None = None
        #: Cache of the STRUCT fields defaulting has to visit (None: not computed yet).
        self.defaulting: tuple[tuple[str, TypeNode], ...] | None = None
        self.enum: tuple[Any, ...] = ()
        self.format = ""
        self.patch_strategy = ""
        self.patch_merge_key = ""

    def __repr__(self) -> str:
        return f"TypeNode({self.type.value}, {self.name or '-'})"

    @property
    def is_atomic(self) -> bool:
        """True when SMD treats a value of this type as one leaf for ownership."""
        t = self.type
        if t is NodeType.SCALAR:
            return True
        if t is NodeType.LIST:
            return self.list_type is ListType.ATOMIC
        if t is NodeType.UNTYPED:
            return False
        return self.map_type is MapType.ATOMIC


UNTYPED = TypeNode(NodeType.UNTYPED, name="untyped")
"""The deduced type: maps granular, lists atomic, anything goes."""


@dataclass(frozen=True, slots=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @classmethod
    def from_api_version(cls, api_version: str, kind: str) -> GroupVersionKind:
        group, _, version = api_version.rpartition("/")
        return cls(group, version, kind)

    def __str__(self) -> str:
        return f"{self.api_version}, Kind={self.kind}"


Defaulter = Callable[[dict[str, Any]], None]
"""Mutates an object in place, filling the defaults the API server would."""


@dataclass(slots=True)
class ResourceSchema:
    """Everything kubesim knows about one served kind at one version."""

    gvk: GroupVersionKind
    #: The object's type (a STRUCT with apiVersion/kind/metadata/...).
    root: TypeNode
    #: Lower-case plural used in URLs (``deployments``).
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    )
    #: True if the kind has a ``status`` subresource (status writes are separate).
    status_subresource: bool = False
    #: True if the kind has a ``scale`` subresource.
    scale_subresource: bool = False
    #: ``metadata`` fields a status write may change besides ``status`` (the registry's status
    #: strategy resets only ``spec`` for Pods, Services, Nodes, ...; everything else for the rest).
    status_metadata: tuple[str, ...] = ()
    #: Built-in kinds (strategic merge patch allowed); False for CRDs.
    builtin: bool = True
    #: Fill API-server defaults in place (structural defaults are applied as well).
    defaulter: Defaulter | None = None
    #: The raw OpenAPI v3 schema a CRD declared (None for built-ins).
    crd_openapi: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def api_version(self) -> str:
        return self.gvk.api_version

    @property
    def kind(self) -> str:
        return self.gvk.kind

    def field(self, *names: str) -> TypeNode | None:
        """The type at a path of field names (list/map levels step into the item type)."""
        node: TypeNode | None = self.root
        for name in names:
            if node is None:
                return None
            while node.type in (NodeType.LIST, NodeType.MAP) and node.item is not None:
                node = node.item
            if node.type is NodeType.STRUCT:
                node = node.fields.get(name)
            elif node.type is NodeType.UNTYPED:
                node = UNTYPED
            else:
                return None
        return node
