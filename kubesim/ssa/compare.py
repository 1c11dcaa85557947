"""Added / modified / removed paths between two values of one schema, modelled on
structured-merge-diff's ``TypedValue.Compare``: what an update changed, whether an apply changed
anything, and which last-applied fields still hold their value."""

from __future__ import annotations

from typing import Any

from kubesim.schema.types import UNTYPED, ListType, MapType, NodeType, TypeNode
from kubesim.ssa.fieldpath import FieldSet, insert
from kubesim.ssa.typed import child_node, index_items


class Comparison:
    __slots__ = ("added", "modified", "removed")

    def __init__(self) -> None:
        self.added: FieldSet = {}
        self.modified: FieldSet = {}
        self.removed: FieldSet = {}

    def is_same(self) -> bool:
        return not self.added and not self.modified and not self.removed


class _Absent:
    pass


ABSENT: Any = _Absent()
"""A field that is not there at all (as opposed to JSON null)."""


def _emptyish(v: Any) -> bool:
    return v is ABSENT or v is None or v == {} or v == []


def compare(old: Any, new: Any, node: TypeNode) -> Comparison:
    """Added / modified / removed paths from ``old`` to ``new`` (SMD ``TypedValue.Compare``).

    Leaves (scalars, atomic values, and containers that are empty on both sides) are reported
    when they appear, disappear or change; granular containers and list items are reported
    only when they appear or disappear.  JSON null counts as present.
    """
    c = Comparison()
    if old is not new and old != new:
        _cmp(old, new, node, [], c)
    return c


def _cmp(lhs: Any, rhs: Any, node: TypeNode, path: list[str], c: Comparison) -> None:
    t = node.type
    if t is NodeType.SCALAR:
        leaf = True
    elif t is NodeType.LIST:
        leaf = node.list_type is ListType.ATOMIC
        if not leaf:
            leaf = (_emptyish(lhs) and _emptyish(rhs)) or not (
                (lhs is ABSENT or lhs is None or isinstance(lhs, list))
                and (rhs is ABSENT or rhs is None or isinstance(rhs, list))
            )
    else:
        leaf = t is not NodeType.UNTYPED and node.map_type is MapType.ATOMIC
        if not leaf:
            leaf = (_emptyish(lhs) and _emptyish(rhs)) or not (
                (lhs is ABSENT or lhs is None or isinstance(lhs, dict))
                and (rhs is ABSENT or rhs is None or isinstance(rhs, dict))
            )
    if leaf:
        if lhs is ABSENT:
            if rhs is not ABSENT:
                insert(c.added, path)
        elif rhs is ABSENT:
            insert(c.removed, path)
        elif lhs != rhs:
            insert(c.modified, path)
        return
    if isinstance(lhs, dict) or isinstance(rhs, dict):
        lm = lhs if isinstance(lhs, dict) else {}
        rm = rhs if isinstance(rhs, dict) else {}
        for k, lv in lm.items():
            rv = rm.get(k, ABSENT)
            if rv is lv or rv == lv:
                continue
            _cmp(lv, rv, child_node(node, k) or UNTYPED, [*path, "f:" + k], c)
        for k, rv in rm.items():
            if k not in lm:
                _cmp(ABSENT, rv, child_node(node, k) or UNTYPED, [*path, "f:" + k], c)
    else:
        lpes, lseen = index_items(node, lhs if isinstance(lhs, list) else [], None, None)
        rpes, rseen = index_items(node, rhs if isinstance(rhs, list) else [], None, None)
        if node.list_type is ListType.SET:
            for pe in lpes:
                if pe not in rseen:
                    insert(c.removed, [*path, pe])
            for pe in rpes:
                if pe not in lseen:
                    insert(c.added, [*path, pe])
        else:
            item_node = node.item or UNTYPED
            for pe in lpes:
                lv = lseen[pe]
                rv = rseen.get(pe, ABSENT)
                if rv == lv:
                    continue
                _cmp(lv, rv, item_node, [*path, pe], c)
            for pe in rpes:
                if pe not in lseen:
                    _cmp(ABSENT, rseen[pe], item_node, [*path, pe], c)
    # postItemHook: granular containers and list items are reported when they come or go.
    if path:
        if lhs is ABSENT:
            insert(c.added, path)
        elif rhs is ABSENT:
            insert(c.removed, path)
