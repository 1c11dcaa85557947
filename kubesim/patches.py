"""PATCH requests before they touch the store: which patch types a resource takes, the options
that go with them (`force` only for apply, `fieldManager` required for apply), decoding the patch,
applying a merge / JSON / strategic merge patch to the live object, and the checks on an apply
body (no managedFields, the URL's apiVersion, kind, name and namespace)."""

from __future__ import annotations

from typing import Any

import jsonpatch

from kubesim import fields, meta, validation
from kubesim.bodies import APPLY, JSON_PATCH, MERGE, PATCH_TYPES, STRATEGIC, decode_body
from kubesim.calls import Call
from kubesim.errors import ApiError, Cause, bad_request, invalid, required, unsupported_media_type
from kubesim.validation import Decoded

NAMESPACE_MISMATCH = "the namespace of the provided object does not match the namespace sent on the request"


def check_options(call: Call) -> bool:
    """The dryRun option, once the patch type (415 if the resource does not take it) and the
    options (422 if they do not fit it) are checked, in the real server's order."""
    rtype, ctype = call.rtype, call.content_type
    if ctype not in (APPLY, MERGE, JSON_PATCH, STRATEGIC) or (ctype == STRATEGIC and rtype.crd):
        raise unsupported_media_type(ctype, PATCH_TYPES + ([] if rtype.crd else [STRATEGIC]))
    if ctype != APPLY and call.query.get("force") is not None:
        forbidden = "Forbidden: may not be specified for non-apply patch"
        raise invalid("PatchOptions", "meta.k8s.io", "", [Cause("FieldValueForbidden", forbidden, "force")])
    dry_run = call.dry_run
    if ctype == APPLY and not call.query.get("fieldManager"):
        missing = required("fieldManager", "is required for apply patch")
        raise invalid("PatchOptions", "meta.k8s.io", "", [missing])
    return dry_run


def forced(call: Call) -> bool:
    return call.query.get("force") in ("true", "1", "True")


def decode_patch(call: Call) -> Decoded:
    """A JSON patch's operations, or a merge/strategic patch document; 400 when unreadable."""
    if call.content_type != JSON_PATCH:
        return decode_body(call.body, allow_yaml=False)
    try:
        decoded = decode_body(call.body, allow_yaml=False, want_object=False)
    except ApiError as exc:
        raise bad_request(f"the JSON patch could not be decoded: {exc.message}") from None
    if not isinstance(decoded.obj, list):
        raise bad_request("a JSON patch must be a list of operations")
    return decoded


def validate(call: Call, patch: Decoded, new: dict[str, Any]) -> list[str]:
    """fieldValidation of a patch: its own unknown and repeated fields, then the patched object's."""
    fields.check_types(call.rtype, new)
    if call.content_type == JSON_PATCH:  # the operations' own repeats are reported as theirs
        return validation.check_patch(call, [], new, validation.json_patch_problems(patch))
    return validation.check_patch(call, patch.duplicates, new, [])


def patched(call: Call, live: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The live object with the decoded patch applied; 422 when a JSON patch cannot apply."""
    rtype = call.rtype
    if call.content_type == JSON_PATCH:
        try:
            out = jsonpatch.apply_patch(live, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the JSON patch could not be applied: {exc}",
                call.name,
                rtype.group,
                rtype.kind,
            ) from None
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            raise bad_request(f"the JSON patch is malformed: {exc}") from None
    elif call.content_type == MERGE:
        out = meta.merge_patch(live, patch)
    else:
        out = fields.strategic_merge(rtype, live, patch)
    if not isinstance(out, dict) or not isinstance(out.get("metadata", {}), dict):
        raise bad_request("the patched object is not an object")
    return out


def apply_config(call: Call) -> tuple[dict[str, Any], list[str]]:
    """The decoded body of an apply patch, checked against the URL (400s as the real server words
    them), and the warnings fieldValidation gives about it."""
    rtype = call.rtype
    decoded = decode_body(call.body, allow_yaml=True)
    warnings = validation.check_apply(call, decoded)
    config: dict[str, Any] = decoded.obj
    cm = config.get("metadata")
    if not isinstance(cm, dict):
        cm = config["metadata"] = {}
    if cm.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    for field, expected in (("version", rtype.api_version), ("kind", rtype.kind)):
        given = config.get("apiVersion" if field == "version" else "kind")
        if given != expected:
            raise bad_request(
                f"Incorrect {field} specified in apply patch. Specified patch {field}: "
                f"{given}, expected: {expected}"
            )
    if cm.get("name") not in (None, call.name):
        raise bad_request(
            f"the name of the object ({cm['name']}) does not match the name on the URL ({call.name})"
        )
    if rtype.namespaced and cm.get("namespace") not in (None, "", call.namespace):
        raise bad_request(NAMESPACE_MISMATCH)
    return config, warnings
