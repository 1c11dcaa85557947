"""structured-merge-diff's merge tests, ported as tables (see `smd_harness` for the translation).

Sources, all in sigs.k8s.io/structured-merge-diff (v4) ``merge/``:

    leaf_test.go               TestUpdateLeaf
    set_test.go                TestUpdateSet
    key_test.go                TestUpdateAssociativeLists
    nested_test.go             TestUpdateNestedType
    multiple_appliers_test.go  TestMultipleAppliersSet, TestMultipleAppliersNestedType,
                               TestMultipleAppliersDeducedType, TestMultipleApplierAtomicMaps
    conflict_test.go           TestNewFromSets, TestConflictsFromManagers (the conflict text)

Every case runs on the pure engine and, unless it says why not, through a running kubesim with
the CRD. Cases left out are listed in `kubesim`'s known gaps (version conversion).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubesim_fixtures import Raw
from smd_harness import (
    BOOLEAN,
    NUMERIC,
    STRING,
    UNTYPED,
    Apply,
    Case,
    ForceApply,
    Type,
    Update,
    atomic_struct,
    list_map,
    map_of,
    recursive_map,
    root,
    run_engine,
    run_server,
    set_of,
    struct,
)

from kubesim import server as kserver
from kubesim import ssa

NULLS = "a null value: the API server prunes nulls from custom objects, SMD keeps them"
V6 = (
    "SMD v6 typed/remove.go keeps a map emptied by pruning as {} (the v4 test expected null, which a "
    "non-nullable object field then fails validation with); the current API server vendors v6"
)

# --- leaf_test.go -----------------------------------------------------------------------------

LEAF = Type(
    "LeafFields",
    "leaffields",
    root(numeric=NUMERIC, string=STRING, bool=BOOLEAN),
    "leaf_test.go leafFieldsParser",
)

LEAF_CASES = [
    Case(
        "apply_twice",
        (
            Apply("default", "v1", "numeric: 1\nstring: string\n"),
            Apply("default", "v1", "numeric: 2\nstring: string\nbool: false\n"),
        ),
        "numeric: 2\nstring: string\nbool: false\n",
        {"default": ("v1", (".numeric", ".string", ".bool"))},
    ),
    Case(
        "apply_twice_different_versions",
        (
            Apply("default", "v1", "numeric: 1\nstring: string\n"),
            Apply("default", "v2", "numeric: 2\nstring: string\nbool: false\n"),
        ),
        "numeric: 2\nstring: string\nbool: false\n",
        {"default": ("v2", (".numeric", ".string", ".bool"))},
    ),
    Case(
        "apply_update_apply_no_conflict",
        (
            Apply("default", "v1", "numeric: 1\nstring: string\n"),
            Update("controller", "v1", "numeric: 1\nstring: string\nbool: true\n"),
            Apply("default", "v1", "numeric: 2\nstring: string\n"),
        ),
        "numeric: 2\nstring: string\nbool: true\n",
        {"default": ("v1", (".numeric", ".string")), "controller": ("v1", (".bool",))},
    ),
    Case(
        "apply_update_apply_no_conflict_different_version",
        (
            Apply("default", "v1", "numeric: 1\nstring: string\n"),
            Update("controller", "v2", "numeric: 1\nstring: string\nbool: true\n"),
            Apply("default", "v1", "numeric: 2\nstring: string\n"),
        ),
        "numeric: 2\nstring: string\nbool: true\n",
        {"default": ("v1", (".numeric", ".string")), "controller": ("v2", (".bool",))},
    ),
    Case(
        "apply_update_apply_with_conflict",
        (
            Apply("default", "v1", "numeric: 1\nstring: string\n"),
            Update("controller", "v1", "numeric: 1\nstring: controller string\nbool: true\n"),
            Apply(
                "default", "v1", "numeric: 2\nstring: user string\n", conflicts=(("controller", ".string"),)
            ),
            ForceApply("default", "v1", "numeric: 2\nstring: user string\n"),
        ),
        "numeric: 2\nstring: user string\nbool: true\n",
        {"default": ("v1", (".numeric", ".string")), "controller": ("v1", (".bool",))},
    ),
    Case(
        "apply_update_apply_with_conflict_across_version",
        (
            Apply("default", "v1", "numeric: 1\nstring: string\n"),
            Update("controller", "v2", "numeric: 1\nstring: controller string\nbool: true\n"),
            Apply(
                "default", "v1", "numeric: 2\nstring: user string\n", conflicts=(("controller", ".string"),)
            ),
            ForceApply("default", "v1", "numeric: 2\nstring: user string\n"),
        ),
        "numeric: 2\nstring: user string\nbool: true\n",
        {"default": ("v1", (".numeric", ".string")), "controller": ("v2", (".bool",))},
    ),
    Case(
        "apply_twice_remove",
        (
            Apply("default", "v1", "numeric: 1\nstring: string\nbool: false\n"),
            Apply("default", "v1", "string: new string\n"),
        ),
        "string: new string\n",
        {"default": ("v1", (".string",))},
    ),
    Case(
        "update_apply_omits",
        (
            Apply("default", "v1", "numeric: 2\n"),
            Update("controller", "v1", "numeric: 1\n"),
            Apply("default", "v1", ""),
        ),
        "numeric: 1\n",
        {"controller": ("v1", (".numeric",))},
    ),
    Case(
        "apply_twice_remove_different_version",
        (
            Apply("default", "v1", "numeric: 1\nstring: string\nbool: false\n"),
            Apply("default", "v2", "string: new string\n"),
        ),
        "string: new string\n",
        {"default": ("v2", (".string",))},
    ),
    Case(
        "update_remove_empty_set",
        (
            Apply("default", "v1", "string: string\n"),
            Update("controller", "v1", "string: new string\n"),
        ),
        "string: new string\n",
        {"controller": ("v1", (".string",))},
    ),
    Case(
        "apply_remove_empty_set",
        (
            Apply("default", "v1", "string: string\n"),
            Apply("default", "v1", ""),
        ),
        "",
        {},
    ),
]

# --- set_test.go ------------------------------------------------------------------------------

SETS = Type("Sets", "sets", root(list=set_of(STRING)), "set_test.go setFieldsParser")


def _items(*names: str) -> str:
    return "list:\n" + "".join(f"- {n}\n" for n in names)


def _set_paths(*names: str) -> tuple[str, ...]:
    return tuple(f'.list[="{n}"]' for n in names)


SET_CASES = [
    Case(
        "apply_twice",
        (
            Apply("default", "v1", _items("a", "c")),
            Apply("default", "v1", _items("a", "b", "c", "d")),
        ),
        _items("a", "b", "c", "d"),
        {"default": ("v1", _set_paths("a", "b", "c", "d"))},
    ),
    Case(
        "apply_update_apply_no_overlap",
        (
            Apply("default", "v1", _items("a", "c")),
            Update("controller", "v1", _items("a", "b", "c", "d")),
            Apply("default", "v1", _items("a", "aprime", "c", "cprime")),
        ),
        _items("a", "aprime", "b", "c", "cprime", "d"),
        {
            "default": ("v1", _set_paths("a", "aprime", "c", "cprime")),
            "controller": ("v1", _set_paths("b", "d")),
        },
    ),
    Case(
        "apply_update_apply_no_overlap_and_different_version",
        (
            Apply("default", "v1", _items("a", "c")),
            Update("controller", "v2", _items("a", "b", "c", "d")),
            Apply("default", "v1", _items("a", "aprime", "c", "cprime")),
        ),
        _items("a", "aprime", "b", "c", "cprime", "d"),
        {
            "default": ("v1", _set_paths("a", "aprime", "c", "cprime")),
            "controller": ("v2", _set_paths("b", "d")),
        },
    ),
    Case(
        "apply_update_apply_with_overlap",
        (
            Apply("default", "v1", _items("a", "c")),
            Update("controller", "v1", _items("a", "b", "c", "d")),
            Apply("default", "v1", _items("a", "b", "c")),
        ),
        _items("a", "b", "c", "d"),
        {"default": ("v1", _set_paths("a", "b", "c")), "controller": ("v1", _set_paths("b", "d"))},
    ),
    Case(
        "apply_update_apply_with_overlap_and_different_version",
        (
            Apply("default", "v1", _items("a", "c")),
            Update("controller", "v2", _items("a", "b", "c", "d")),
            Apply("default", "v1", _items("a", "b", "c")),
        ),
        _items("a", "b", "c", "d"),
        {"default": ("v1", _set_paths("a", "b", "c")), "controller": ("v2", _set_paths("b", "d"))},
    ),
    Case(
        "apply_twice_reorder",
        (
            Apply("default", "v1", _items("a", "b", "c", "d")),
            Apply("default", "v1", _items("a", "d", "c", "b")),
        ),
        _items("a", "d", "c", "b"),
        {"default": ("v1", _set_paths("a", "b", "c", "d"))},
    ),
    Case(
        "apply_update_apply_reorder",
        (
            Apply("default", "v1", _items("a", "b", "c", "d")),
            Update("controller", "v1", _items("a", "d", "c", "b")),
            Apply("default", "v1", _items("a", "b", "c", "d")),
        ),
        _items("a", "b", "c", "d"),
        {"default": ("v1", _set_paths("a", "b", "c", "d"))},
    ),
    Case(
        "apply_update_apply_reorder_across_versions",
        (
            Apply("default", "v1", _items("a", "b", "c", "d")),
            Update("controller", "v1", _items("a", "d", "c", "b")),
            Apply("default", "v2", _items("a", "b", "c", "d")),
        ),
        _items("a", "b", "c", "d"),
        {"default": ("v2", _set_paths("a", "b", "c", "d"))},
    ),
    Case(
        "apply_twice_remove",
        (
            Apply("default", "v1", _items("a", "b", "c", "d")),
            Apply("default", "v1", _items("a", "c")),
        ),
        _items("a", "c"),
        {"default": ("v1", _set_paths("a", "c"))},
    ),
    Case(
        "apply_twice_remove_across_versions",
        (
            Apply("default", "v1", _items("a", "b", "c", "d")),
            Apply("default", "v2", _items("a", "c", "e")),
        ),
        _items("a", "c", "e"),
        {"default": ("v2", _set_paths("a", "c", "e"))},
    ),
]

# --- key_test.go ------------------------------------------------------------------------------

ASSOCIATIVE = Type(
    "AssociativeList",
    "associativelists",
    root(list=list_map(struct(name=STRING, value=NUMERIC), "name")),
    "key_test.go associativeListParser",
)


def _kpaths(name: str, *fields: str) -> tuple[str, ...]:
    item = f'.list[name="{name}"]'
    return (item, *(item + "." + f for f in fields))


KEY_CASES = [
    Case(
        "removing_obsolete_applied_structs",
        (
            Apply("default", "v1", "list:\n- name: a\n  value: 1\n"),
            Apply("default", "v1", "list:\n- name: b\n  value: 2\n"),
        ),
        "list:\n- name: b\n  value: 2\n",
        {"default": ("v1", _kpaths("b", "name", "value"))},
    ),
]

# --- nested_test.go ---------------------------------------------------------------------------

STRING_SET = set_of(STRING)
STRING_MAP = map_of(STRING)
NESTED = Type(
    "Nested",
    "nesteds",
    root(
        listOfLists=list_map(struct(name=STRING, value=STRING_SET), "name"),
        listOfMaps=list_map(struct(name=STRING, value=STRING_MAP), "name"),
        mapOfLists=map_of(STRING_SET),
        mapOfMaps=map_of(STRING_MAP),
        mapOfMapsRecursive=recursive_map(),
        struct=struct(name=STRING, value=NUMERIC),
    ),
    "nested_test.go nestedTypeParser",
)

NESTED_CASES = [
    Case(
        "listOfLists_change_value",
        (
            Apply("default", "v1", "listOfLists:\n- name: a\n  value: [b, c]\n"),
            Apply("default", "v1", "listOfLists:\n- name: a\n  value: [a, c]\n"),
        ),
        "listOfLists:\n- name: a\n  value: [a, c]\n",
        {
            "default": (
                "v1",
                (
                    '.listOfLists[name="a"]',
                    '.listOfLists[name="a"].name',
                    '.listOfLists[name="a"].value[="a"]',
                    '.listOfLists[name="a"].value[="c"]',
                ),
            )
        },
    ),
    Case(
        "listOfLists_change_key_and_value",
        (
            Apply("default", "v1", "listOfLists:\n- name: a\n  value: [b, c]\n"),
            Apply("default", "v1", "listOfLists:\n- name: b\n  value: [a, c]\n"),
        ),
        "listOfLists:\n- name: b\n  value: [a, c]\n",
        {
            "default": (
                "v1",
                (
                    '.listOfLists[name="b"]',
                    '.listOfLists[name="b"].name',
                    '.listOfLists[name="b"].value[="a"]',
                    '.listOfLists[name="b"].value[="c"]',
                ),
            )
        },
    ),
    Case(
        "listOfMaps_change_value",
        (
            Apply("default", "v1", "listOfMaps:\n- name: a\n  value: {b: x, c: y}\n"),
            Apply("default", "v1", "listOfMaps:\n- name: a\n  value: {a: x, c: z}\n"),
        ),
        "listOfMaps:\n- name: a\n  value: {a: x, c: z}\n",
        {
            "default": (
                "v1",
                (
                    '.listOfMaps[name="a"]',
                    '.listOfMaps[name="a"].name',
                    '.listOfMaps[name="a"].value.a',
                    '.listOfMaps[name="a"].value.c',
                ),
            )
        },
    ),
    Case(
        "listOfMaps_change_key_and_value",
        (
            Apply("default", "v1", "listOfMaps:\n- name: a\n  value: {b: x, c: y}\n"),
            Apply("default", "v1", "listOfMaps:\n- name: b\n  value: {a: x, c: z}\n"),
        ),
        "listOfMaps:\n- name: b\n  value: {a: x, c: z}\n",
        {
            "default": (
                "v1",
                (
                    '.listOfMaps[name="b"]',
                    '.listOfMaps[name="b"].name',
                    '.listOfMaps[name="b"].value.a',
                    '.listOfMaps[name="b"].value.c',
                ),
            )
        },
    ),
    Case(
        "mapOfLists_change_value",
        (
            Apply("default", "v1", "mapOfLists:\n  a: [b, c]\n"),
            Apply("default", "v1", "mapOfLists:\n  a: [a, c]\n"),
        ),
        "mapOfLists:\n  a: [a, c]\n",
        {"default": ("v1", (".mapOfLists.a", '.mapOfLists.a[="a"]', '.mapOfLists.a[="c"]'))},
    ),
    Case(
        "mapOfLists_change_key_and_value",
        (
            Apply("default", "v1", "mapOfLists:\n  a: [b, c]\n"),
            Apply("default", "v1", "mapOfLists:\n  b: [a, c]\n"),
        ),
        "mapOfLists:\n  b: [a, c]\n",
        {"default": ("v1", (".mapOfLists.b", '.mapOfLists.b[="a"]', '.mapOfLists.b[="c"]'))},
    ),
    Case(
        "mapOfMaps_change_value",
        (
            Apply("default", "v1", "mapOfMaps:\n  a: {b: x, c: y}\n"),
            Apply("default", "v1", "mapOfMaps:\n  a: {a: x, c: z}\n"),
        ),
        "mapOfMaps:\n  a: {a: x, c: z}\n",
        {"default": ("v1", (".mapOfMaps.a", ".mapOfMaps.a.a", ".mapOfMaps.a.c"))},
    ),
    Case(
        "mapOfMaps_change_key_and_value",
        (
            Apply("default", "v1", "mapOfMaps:\n  a: {b: x, c: y}\n"),
            Apply("default", "v1", "mapOfMaps:\n  b: {a: x, c: z}\n"),
        ),
        "mapOfMaps:\n  b: {a: x, c: z}\n",
        {"default": ("v1", (".mapOfMaps.b", ".mapOfMaps.b.a", ".mapOfMaps.b.c"))},
    ),
    Case(
        "mapOfMapsRecursive_change_middle_key",
        (
            Apply("default", "v1", "mapOfMapsRecursive:\n  a:\n    b:\n      c:\n"),
            Apply("default", "v1", "mapOfMapsRecursive:\n  a:\n    d:\n      c:\n"),
        ),
        "mapOfMapsRecursive:\n  a:\n    d:\n      c:\n",
        {
            "default": (
                "v1",
                (".mapOfMapsRecursive.a", ".mapOfMapsRecursive.a.d", ".mapOfMapsRecursive.a.d.c"),
            )
        },
        engine_only=NULLS,
    ),
    Case(
        "struct_apply_remove_all",
        (
            Apply("default", "v1", "struct:\n  name: a\n  value: 1\n"),
            Apply("default", "v1", ""),
        ),
        "",
        {},
    ),
    Case(
        "struct_apply_remove_dangling",
        (
            Apply("default", "v1", "struct:\n  name: a\n"),
            Apply("default", "v1", "struct:\n"),
        ),
        "struct: {}\n",
        {"default": ("v1", (".struct",))},
        engine_only=NULLS,
        note=V6,
    ),
    Case(
        "struct_apply_update_remove_all",
        (
            Apply("default", "v1", "struct:\n  name: a\n"),
            Update("controller", "v1", "struct:\n  name: a\n  value: 1\n"),
            Apply("default", "v1", ""),
        ),
        "struct:\n  value: 1\n",
    ),
    Case(
        "struct_apply_update_dict_dangling",
        (
            Apply("default", "v1", "struct:\n  name: a\n"),
            Update("controller", "v1", "struct:\n  name: a\n  value: 1\n"),
            Apply("default", "v1", "struct: {}\n"),
        ),
        "struct:\n  value: 1\n",
    ),
    Case(
        "struct_apply_update_dict_null",
        (
            Apply("default", "v1", "struct:\n  name: a\n"),
            Update("controller", "v1", "struct:\n  name: a\n  value: 1\n"),
            Apply("default", "v1", "struct:\n"),
        ),
        "struct:\n  value: 1\n",
        engine_only=NULLS,
    ),
    Case(
        "struct_apply_update_took_over",
        (
            Apply("default", "v1", "struct:\n  name: a\n"),
            Update("controller", "v1", "struct:\n  name: b\n  value: 1\n"),
            Apply("default", "v1", "struct:\n"),
        ),
        "struct:\n  name: b\n  value: 1\n",
        engine_only=NULLS,
    ),
]

# --- multiple_appliers_test.go -----------------------------------------------------------------

MA_SET_CASES = [
    Case(
        "remove_one",
        (
            Apply("apply-one", "v1", "list:\n- name: a\n- name: b\n"),
            Apply("apply-two", "v2", "list:\n- name: c\n"),
            Apply("apply-one", "v3", "list:\n- name: a\n"),
        ),
        "list:\n- name: a\n- name: c\n",
        {"apply-one": ("v3", _kpaths("a", "name")), "apply-two": ("v2", _kpaths("c", "name"))},
    ),
    Case(
        "same_value_no_conflict",
        (
            Apply("apply-one", "v1", "list:\n- name: a\n  value: 0\n"),
            Apply("apply-two", "v2", "list:\n- name: a\n  value: 0\n"),
        ),
        "list:\n- name: a\n  value: 0\n",
        {
            "apply-one": ("v1", _kpaths("a", "name", "value")),
            "apply-two": ("v2", _kpaths("a", "name", "value")),
        },
    ),
    Case(
        "change_value_yes_conflict",
        (
            Apply("apply-one", "v1", "list:\n- name: a\n  value: 0\n"),
            Apply(
                "apply-two",
                "v2",
                "list:\n- name: a\n  value: 1\n",
                conflicts=(("apply-one", '.list[name="a"].value'),),
            ),
        ),
        "list:\n- name: a\n  value: 0\n",
        {"apply-one": ("v1", _kpaths("a", "name", "value"))},
    ),
    Case(
        "remove_one_keep_one",
        (
            Apply("apply-one", "v1", "list:\n- name: a\n- name: b\n- name: c\n"),
            Apply("apply-two", "v2", "list:\n- name: c\n- name: d\n"),
            Apply("apply-one", "v3", "list:\n- name: a\n"),
        ),
        "list:\n- name: a\n- name: c\n- name: d\n",
        {
            "apply-one": ("v3", _kpaths("a", "name")),
            "apply-two": ("v2", _kpaths("c", "name") + _kpaths("d", "name")),
        },
    ),
]


def _lol(name: str, *values: str) -> tuple[str, ...]:
    item = f'.listOfLists[name="{name}"]'
    return (item, item + ".name", *(f'{item}.value[="{v}"]' for v in values))


MA_NESTED_CASES = [
    Case(
        "remove_one_keep_one_with_two_sub_items",
        (
            Apply("apply-one", "v1", "listOfLists:\n- name: a\n- name: b\n  value: [c]\n"),
            Apply("apply-two", "v2", "listOfLists:\n- name: b\n  value: [d]\n"),
            Apply("apply-one", "v3", "listOfLists:\n- name: a\n"),
        ),
        "listOfLists:\n- name: a\n- name: b\n  value: [d]\n",
        {"apply-one": ("v3", _lol("a")), "apply-two": ("v2", _lol("b", "d"))},
    ),
    Case(
        "remove_one_keep_one_with_dangling_subitem",
        (
            Apply("apply-one", "v1", "listOfLists:\n- name: a\n- name: b\n  value: [c]\n"),
            Apply("apply-two", "v2", "listOfLists:\n- name: b\n  value: [d]\n"),
            Update("controller", "v2", "listOfLists:\n- name: a\n- name: b\n  value: [c, d, e]\n"),
            Apply("apply-one", "v3", "listOfLists:\n- name: a\n"),
        ),
        "listOfLists:\n- name: a\n- name: b\n  value: [d, e]\n",
        {
            "apply-one": ("v3", _lol("a")),
            "apply-two": ("v2", _lol("b", "d")),
            "controller": ("v2", ('.listOfLists[name="b"].value[="e"]',)),
        },
    ),
    Case(
        "remove_one_with_dangling_subitem_keep_one",
        (
            Apply("apply-one", "v1", "listOfLists:\n- name: a\n- name: b\n  value: [c]\n"),
            Apply("apply-two", "v2", "listOfLists:\n- name: a\n  value: [b]\n"),
            Update("controller", "v2", "listOfLists:\n- name: a\n  value: [b]\n- name: b\n  value: [c, d]\n"),
            Apply("apply-one", "v3", "listOfLists:\n- name: a\n"),
        ),
        "listOfLists:\n- name: a\n  value: [b]\n",
        {"apply-one": ("v3", _lol("a")), "apply-two": ("v2", _lol("a", "b"))},
    ),
    Case(
        "remove_one_with_managed_subitem_keep_one",
        (
            Apply("apply-one", "v1", "listOfLists:\n- name: a\n- name: b\n  value: [c]\n"),
            Apply("apply-two", "v2", "listOfLists:\n- name: a\n  value: [b]\n"),
            Update("controller", "v2", "listOfLists:\n- name: a\n  value: [b]\n- name: b\n  value: [c, d]\n"),
            Apply("apply-one", "v3", "listOfLists:\n- name: a\n"),
        ),
        "listOfLists:\n- name: a\n  value: [b]\n",
        {"apply-one": ("v3", _lol("a")), "apply-two": ("v2", _lol("a", "b"))},
    ),
    Case(
        "remove_one_keep_one_with_sub_item",
        (
            Apply("apply-one", "v1", "listOfLists:\n- name: a\n- name: b\n  value: [c]\n"),
            Apply("apply-two", "v2", "listOfLists:\n- name: b\n  value: [d]\n"),
            Apply("apply-one", "v3", "listOfLists:\n- name: a\n"),
        ),
        "listOfLists:\n- name: a\n- name: b\n  value: [d]\n",
        {"apply-one": ("v3", _lol("a")), "apply-two": ("v2", _lol("b", "d"))},
    ),
    Case(
        "multiple_appliers_recursive_map",
        (
            Apply("apply-one", "v1", "mapOfMapsRecursive:\n  a:\n    b:\n  c:\n    d:\n"),
            Apply("apply-two", "v2", "mapOfMapsRecursive:\n  a:\n  c:\n    d:\n"),
            Update(
                "controller-one",
                "v3",
                "mapOfMapsRecursive:\n  a:\n    b:\n      c:\n  c:\n    d:\n      e:\n",
            ),
            Update(
                "controller-two",
                "v2",
                "mapOfMapsRecursive:\n  a:\n    b:\n      c:\n        d:\n"
                "  c:\n    d:\n      e:\n        f:\n",
            ),
            Update(
                "controller-one",
                "v3",
                "mapOfMapsRecursive:\n  a:\n    b:\n      c:\n        d:\n          e:\n"
                "  c:\n    d:\n      e:\n        f:\n          g:\n",
            ),
            Apply("apply-one", "v4", "mapOfMapsRecursive:\n"),
        ),
        "mapOfMapsRecursive:\n  a: {}\n  c:\n    d:\n      e:\n        f:\n          g:\n",
        {
            "apply-one": ("v4", (".mapOfMapsRecursive",)),
            "apply-two": (
                "v2",
                (".mapOfMapsRecursive.a", ".mapOfMapsRecursive.c", ".mapOfMapsRecursive.c.d"),
            ),
            "controller-one": ("v3", (".mapOfMapsRecursive.c.d.e", ".mapOfMapsRecursive.c.d.e.f.g")),
            "controller-two": ("v2", (".mapOfMapsRecursive.c.d.e.f",)),
        },
        engine_only=NULLS,
        note=V6,
    ),
]

DEDUCED = Type(
    "Deduced", "deduceds", {"type": "object", **UNTYPED}, "multiple_appliers_test.go DeducedParser"
)

MA_DEDUCED_CASES = [
    Case(
        "multiple_appliers_recursive_map_deduced",
        (
            Apply("apply-one", "v1", "a:\n  b:\nc:\n  d:\n"),
            Apply("apply-two", "v2", "a:\nc:\n  d:\n"),
            Update("controller-one", "v3", "a:\n  b:\n    c:\nc:\n  d:\n    e:\n"),
            Update("controller-two", "v2", "a:\n  b:\n    c:\n      d:\nc:\n  d:\n    e:\n      f:\n"),
            Update(
                "controller-one",
                "v3",
                "a:\n  b:\n    c:\n      d:\n        e:\nc:\n  d:\n    e:\n      f:\n        g:\n",
            ),
            Apply("apply-one", "v4", ""),
        ),
        "a: {}\nc:\n  d:\n    e:\n      f:\n        g:\n",
        {
            "apply-two": ("v2", (".a", ".c", ".c.d")),
            "controller-one": ("v3", (".c.d.e", ".c.d.e.f.g")),
            "controller-two": ("v2", (".c.d.e.f",)),
        },
        engine_only=NULLS,
        note=V6,
    ),
]

ATOMIC_MAP = Type(
    "AtomicMap",
    "atomicmaps",
    root(atomicMap=atomic_struct(field1=STRING, field2=STRING)),
    "multiple_appliers_test.go atomicMapParser",
)

MA_ATOMIC_CASES = [
    Case(
        "force",
        (
            Apply("apply-one", "v1", "atomicMap:\n  field1: a\n"),
            Apply("apply-two", "v1", "atomicMap:\n  field2: b\n", conflicts=(("apply-one", ".atomicMap"),)),
            ForceApply("apply-two", "v1", "atomicMap:\n  field2: b\n"),
        ),
        "atomicMap:\n  field2: b\n",
        {"apply-two": ("v1", (".atomicMap",))},
    ),
]

TABLES: list[tuple[str, Type, list[Case]]] = [
    ("TestUpdateLeaf", LEAF, LEAF_CASES),
    ("TestUpdateSet", SETS, SET_CASES),
    ("TestUpdateAssociativeLists", ASSOCIATIVE, KEY_CASES),
    ("TestUpdateNestedType", NESTED, NESTED_CASES),
    ("TestMultipleAppliersSet", ASSOCIATIVE, MA_SET_CASES),
    ("TestMultipleAppliersNestedType", NESTED, MA_NESTED_CASES),
    ("TestMultipleAppliersDeducedType", DEDUCED, MA_DEDUCED_CASES),
    ("TestMultipleApplierAtomicMaps", ATOMIC_MAP, MA_ATOMIC_CASES),
]
ALL = [(f"{test}/{case.name}", t, case) for test, t, cases in TABLES for case in cases]
SERVED = [(n, t, c) for n, t, c in ALL if not c.engine_only]


@pytest.mark.parametrize(("name", "t", "case"), ALL, ids=[n for n, _, _ in ALL])
def test_engine(name: str, t: Type, case: Case) -> None:
    run_engine(t, case)


@pytest.fixture(scope="module")
def smd_server() -> Iterator[Raw]:
    with kserver.start(":memory:") as running:
        client = Raw(running)
        for t in {id(t): t for _, t, _ in SERVED}.values():
            code, body = client.request(
                "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", t.crd()
            )
            assert code == 201, body
        yield client
        client.close()


@pytest.mark.parametrize(("name", "t", "case"), SERVED, ids=[n for n, _, _ in SERVED])
def test_server(smd_server: Raw, name: str, t: Type, case: Case) -> None:
    run_server(smd_server, t, case, name.lower().replace("/", "-").replace("_", "-"))


# --- conflict_test.go -------------------------------------------------------------------------


def _managed(**sets: str) -> ssa.Managed:
    """Apply entries of managers owning the FieldsV1 sets given as JSON."""
    entries = [
        {
            "manager": m,
            "operation": "Apply",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": json.loads(raw),
        }
        for m, raw in sets.items()
    ]
    return ssa.decode_managed_fields(entries, what="test")


def test_new_from_sets() -> None:
    """TestNewFromSets: managers in name order, each manager's shallow paths first."""
    managed = _managed(
        Bob='{"f:key":{},"f:list":{"k:{\\"id\\":2,\\"key\\":\\"a\\"}":{"f:id":{}}}}',
        Alice='{"f:value":{},"f:list":{"k:{\\"id\\":2,\\"key\\":\\"a\\"}":{"f:key":{}}}}',
    )
    err = ssa.conflict_error({k: e.fields for k, e in managed.items()}, managed)
    assert err.message == "Apply failed with 4 conflicts: " + (
        'conflicts with "Alice":\n- .value\n- .list[id=2,key="a"].key\n'
        'conflicts with "Bob":\n- .key\n- .list[id=2,key="a"].id'
    )


def test_conflicts_from_managers() -> None:
    """TestConflictsFromManagers: one manager, two paths deep in a list-map item."""
    managed = _managed(
        Bob='{"f:obj":{"f:template":{"f:obj":{"f:list":{"k:{\\"name\\":\\"a\\"}":{"f:id":{},"f:key":{}}}}}}}'
    )
    err = ssa.conflict_error({k: e.fields for k, e in managed.items()}, managed)
    assert err.message == "Apply failed with 2 conflicts: " + (
        'conflicts with "Bob":\n- .obj.template.obj.list[name="a"].id\n- .obj.template.obj.list[name="a"].key'
    )
