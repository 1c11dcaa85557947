"""ReconcileRecords as plain JSON-able dicts and back, and the defensive Secret mask.

The engine masks Secret values before it builds an entry; `mask_secrets` does it again for every
Secret entry before anything is stored or printed, so a bug upstream cannot leak a value here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reconciler.changeset import (
    Action,
    Attribution,
    ChangeSetEntry,
    FieldDrift,
    Health,
    ObjectRef,
    PublishedApp,
    ReconcileRecord,
    Revision,
)
from reconciler.ssa.mask import MASK, SECRET_SECTIONS


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def record_to_dict(record: ReconcileRecord) -> dict[str, Any]:
    out = dataclasses.asdict(record)
    out["ok"] = record.ok
    for entry, raw in zip(record.entries, out["entries"], strict=True):
        raw["subject"] = entry.ref.subject
    return out


def record_from_dict(data: dict[str, Any]) -> ReconcileRecord:
    rev = data.get("revision")
    entries = [_entry_from_dict(e) for e in data.get("entries", [])]
    fields = _known(ReconcileRecord, data)
    fields.update(
        revision=Revision(**_known(Revision, rev)) if rev else None,
        entries=entries,
        errors=list(data.get("errors", [])),
        published=[PublishedApp(**_known(PublishedApp, p)) for p in data.get("published", [])],
    )
    return ReconcileRecord(**fields)


def _entry_from_dict(data: dict[str, Any]) -> ChangeSetEntry:
    fields = _known(ChangeSetEntry, data)
    fields["ref"] = ObjectRef(**_known(ObjectRef, data["ref"]))
    fields["action"] = Action(data["action"])
    if "health" in data:
        fields["health"] = Health(data["health"])
    fields["patch"] = tuple(data.get("patch", ()))
    fields["fields"] = tuple(
        FieldDrift(
            **{
                **_known(FieldDrift, f),
                "owners": tuple(Attribution(**_known(Attribution, o)) for o in f.get("owners", ())),
            }
        )
        for f in data.get("fields", ())
    )
    return ChangeSetEntry(**fields)


# -- Secret masking ---------------------------------------------------------------------------


def _mask_leaves(value: Any) -> Any:
    """Every value in a Secret's data map becomes the mask; already-masked strings stay as they are."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _mask_leaves(v) for k, v in value.items()}
    if isinstance(value, str) and value.startswith(MASK):
        return value  # keeps Flux's "*** (before)" / "*** (after)" markers
    return MASK


def _mask_object(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    return {k: (_mask_leaves(v) if k in SECRET_SECTIONS else v) for k, v in obj.items()}


def _mask_patch_op(op: dict[str, Any]) -> dict[str, Any]:
    path = str(op.get("path", ""))
    parts = path.split("/")[1:] if path else []
    if "value" not in op:
        return op
    if not parts:  # the whole object
        return {**op, "value": _mask_object(op["value"])}
    if parts[0] in SECRET_SECTIONS:
        return {**op, "value": _mask_leaves(op["value"])}
    return op


def _mask_field(field: FieldDrift) -> FieldDrift:
    head = field.path.lstrip(".").split(".", 1)[0].split("[", 1)[0]
    if field.path.strip(".") == "":
        return dataclasses.replace(field, live=_mask_object(field.live), desired=_mask_object(field.desired))
    if head in SECRET_SECTIONS:
        return dataclasses.replace(field, live=_mask_leaves(field.live), desired=_mask_leaves(field.desired))
    return field


def mask_entry(entry: ChangeSetEntry) -> ChangeSetEntry:
    if entry.ref.kind != "Secret":
        return entry
    return dataclasses.replace(
        entry,
        patch=tuple(_mask_patch_op(op) for op in entry.patch),
        fields=tuple(_mask_field(f) for f in entry.fields),
    )


def mask_secrets(record: ReconcileRecord) -> ReconcileRecord:
    return dataclasses.replace(record, entries=[mask_entry(e) for e in record.entries])
