"""CustomResourceDefinitions: checking them, the resource types they serve, their status, and
validating custom objects against a version's structural schema (pure)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import jsonschema

from kubesim import schema as kschema
from kubesim.errors import Cause, bad_value, required
from kubesim.resources import ResourceType


def validate_crd(crd: dict[str, Any]) -> list[Cause]:
    """The checks the real server makes that matter for serving the CRD at all."""
    causes: list[Cause] = []
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [required("spec", "")]
    group, names = spec.get("group"), spec.get("names")
    if not isinstance(group, str) or not group:
        causes.append(required("spec.group", ""))
    elif "." not in group:
        causes.append(bad_value("spec.group", group, "should be a domain with at least one dot"))
    elif _protected(group) and "api-approved.kubernetes.io" not in (
        (crd.get("metadata") or {}).get("annotations") or {}
    ):
        causes.append(
            required(
                "metadata.annotations[api-approved.kubernetes.io]",
                'protected groups must have approval annotation "api-approved.kubernetes.io", see '
                "https://github.com/kubernetes/enhancements/pull/1111",
            )
        )
    if not isinstance(names, dict):
        causes.append(required("spec.names", ""))
        names = {}
    for key in ("plural", "kind"):
        if not isinstance(names.get(key), str) or not names.get(key):
            causes.append(required(f"spec.names.{key}", ""))
    plural = names.get("plural")
    if isinstance(plural, str) and plural and plural != plural.lower():
        causes.append(bad_value("spec.names.plural", plural, "must be lowercase"))
    name = (crd.get("metadata") or {}).get("name", "")
    if isinstance(plural, str) and isinstance(group, str) and name != f"{plural}.{group}":
        causes.append(bad_value("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        causes.append(
            Cause(
                "FieldValueNotSupported",
                f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"',
                "spec.scope",
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(required("spec.versions", "must have exactly one version marked as storage version"))
        return causes
    storage = 0
    for i, v in enumerate(versions):
        if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not v.get("name"):
            causes.append(required(f"spec.versions[{i}].name", ""))
            continue
        storage += bool(v.get("storage"))
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if schema is not None and not isinstance(schema, dict):
            causes.append(
                bad_value(f"spec.versions[{i}].schema.openAPIV3Schema", schema, "must be an object")
            )
        elif isinstance(schema, dict):
            try:
                jsonschema.Draft4Validator.check_schema(to_json_schema(schema))
            except jsonschema.SchemaError as exc:
                causes.append(bad_value(f"spec.versions[{i}].schema.openAPIV3Schema", "...", exc.message))
    if storage != 1:
        causes.append(
            bad_value("spec.versions", "...", "must have exactly one version marked as storage version")
        )
    if not causes:
        try:
            kschema.crd_schemas(crd)
        except kschema.CRDSchemaError as exc:
            causes.append(Cause("FieldValueInvalid", f"Invalid value: {exc}", "spec.versions"))
    return causes


def _protected(group: str) -> bool:
    return group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))


def types_for(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a (valid) CRD serves: one per served version."""
    spec = crd["spec"]
    names = spec["names"]
    by_version = {s.gvk.version: s for s in kschema.crd_schemas(crd)}
    out = []
    for v in spec["versions"]:
        if not v.get("served", True):
            continue
        sub = v.get("subresources") or {}
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            ResourceType(
                group=spec["group"],
                version=v["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status="status" in sub,
                scale="scale" in sub,
                generation=True,
                crd=True,
                schema=schema,
                scale_paths=_scale_paths(sub.get("scale")),
                selectable_fields=tuple(v.get("selectableFields") or ()),
                printer_columns=tuple(v.get("additionalPrinterColumns") or ()),
                ssa_schema=by_version.get(v["name"]),
            )
        )
    return out


def _scale_paths(scale: Any) -> tuple[str, str, str]:
    if not isinstance(scale, dict):
        return (".spec.replicas", ".status.replicas", "")
    return (
        str(scale.get("specReplicasPath") or ".spec.replicas"),
        str(scale.get("statusReplicasPath") or ".status.replicas"),
        str(scale.get("labelSelectorPath") or ""),
    )


def status_for(crd: dict[str, Any], when: str) -> dict[str, Any]:
    """What the apiextensions controllers report once the names are accepted and the CRD is served."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    storage = [v["name"] for v in spec["versions"] if v.get("storage")]
    old = crd.get("status") or {}
    stored = list(old.get("storedVersions") or [])
    for v in storage:
        if v not in stored:
            stored.append(v)
    ours = [
        _condition(old, "NamesAccepted", "NoConflicts", "no conflicts found", when),
        _condition(old, "Established", "InitialNamesAccepted", "the initial names have been accepted", when),
    ]
    # SetCRDCondition: the controllers set their conditions in place and leave the others alone.
    conditions = [c for c in old.get("conditions") or [] if isinstance(c, dict)]
    for cond in ours:
        at = [i for i, c in enumerate(conditions) if c.get("type") == cond["type"]]
        if at:
            conditions[at[0]] = cond
        else:
            conditions.append(cond)
    return {
        **{k: v for k, v in old.items() if k not in ("acceptedNames", "conditions", "storedVersions")},
        "acceptedNames": names,
        "conditions": conditions,
        "storedVersions": stored,
    }


def _condition(old: dict[str, Any], kind: str, reason: str, message: str, when: str) -> dict[str, Any]:
    for c in old.get("conditions") or []:
        if c.get("type") == kind and c.get("status") == "True":
            return dict(c)
    return {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": when}


# -- custom objects -------------------------------------------------------------------------------


@dataclass
class Checked:
    obj: dict[str, Any]
    unknown: list[str]  # dotted paths of fields the schema does not declare (pruned from obj)
    causes: list[Cause]


_ROOT_KEEP = ("apiVersion", "kind", "metadata")


def check_object(schema: dict[str, Any] | None, obj: dict[str, Any]) -> Checked:
    """Prune undeclared fields (as the server does) and validate the rest against the schema."""
    if not schema:
        return Checked(obj, [], [])
    pruned = copy.deepcopy(obj)
    unknown: list[str] = []
    _prune(pruned, schema, "", unknown, root=True)
    body = {k: v for k, v in pruned.items() if k not in _ROOT_KEEP}
    root = dict(schema)
    props = {k: v for k, v in (root.get("properties") or {}).items() if k not in _ROOT_KEEP}
    root["properties"] = props
    root["required"] = [r for r in root.get("required") or [] if r not in _ROOT_KEEP]
    if not root["required"]:
        del root["required"]
    validator = jsonschema.Draft4Validator(to_json_schema(root))
    causes = [_cause(e) for e in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))]
    return Checked(pruned, unknown, causes)


def _prune(value: Any, schema: dict[str, Any], path: str, unknown: list[str], root: bool = False) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            props = schema.get("properties") or {}
            for k, v in value.items():
                if k in props:
                    _prune(v, props[k], _join(path, k), unknown)
            return
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        if props is not None or (additional is None and schema.get("type") == "object"):
            props = props or {}
            for k in list(value):
                if root and k in _ROOT_KEEP:
                    continue
                if schema.get("x-kubernetes-embedded-resource") and k in _ROOT_KEEP:
                    continue
                if k not in props:
                    if isinstance(additional, dict):
                        _prune(value[k], additional, _join(path, k), unknown)
                        continue
                    if additional is True:
                        continue
                    unknown.append(_join(path, k))
                    del value[k]
                else:
                    _prune(value[k], props[k], _join(path, k), unknown)
        elif isinstance(additional, dict):
            for k, v in value.items():
                _prune(v, additional, _join(path, k), unknown)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            _prune(v, schema["items"], f"{path}[{i}]", unknown)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def to_json_schema(schema: Any) -> Any:
    """OpenAPI v3 structural schema → JSON Schema draft 4 (nullable, int-or-string)."""
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k.startswith("x-kubernetes") or k in ("nullable", "example", "externalDocs", "default", "format"):
            continue
        if k in ("properties", "patternProperties", "definitions"):
            out[k] = {name: to_json_schema(s) for name, s in v.items()} if isinstance(v, dict) else v
        elif k in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[k] = to_json_schema(v)
        else:
            out[k] = v
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            **{k: v for k, v in out.items() if k != "anyOf"},
        }
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _cause(error: jsonschema.ValidationError) -> Cause:
    path = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in error.absolute_path).replace(
        ".[", "["
    )
    value = error.instance
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else ""
        field = f"{path}.{missing}" if path else missing
        return Cause("FieldValueRequired", "Required value", field)
    if error.validator == "type":
        want = error.validator_value
        return Cause(
            "FieldValueTypeInvalid",
            f'Invalid value: "{_type_name(value)}": {path} in body must be of type {want}: '
            f'"{_type_name(value)}"',
            path,
        )
    if error.validator == "enum":
        allowed = ", ".join(f'"{a}"' for a in error.validator_value)
        return Cause(
            "FieldValueNotSupported", f"Unsupported value: {_show(value)}: supported values: {allowed}", path
        )
    detail = _detail(error, path)
    return Cause("FieldValueInvalid", f"Invalid value: {_show(value)}: {path} in body {detail}", path)


def _detail(error: jsonschema.ValidationError, path: str) -> str:
    """kube-openapi's wording for the common validators."""
    v, limit, schema = error.validator, error.validator_value, error.schema
    exclusive = isinstance(schema, dict) and schema.get(f"exclusive{str(v).capitalize()}") is True
    wording = {
        "minimum": f"should be greater than {'' if exclusive else 'or equal to '}{limit}",
        "maximum": f"should be less than {'' if exclusive else 'or equal to '}{limit}",
        "minLength": f"should be at least {limit} chars long",
        "maxLength": f"may not be longer than {limit}",
        "pattern": f"should match '{limit}'",
        "minItems": f"should have at least {limit} items",
        "maxItems": f"should have at most {limit} items",
        "uniqueItems": "shouldn't contain duplicates",
        "multipleOf": f"should be a multiple of {limit}",
        "minProperties": f"should have at least {limit} properties",
        "maxProperties": f"should have at most {limit} properties",
    }
    return wording.get(str(v), str(error.message))


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict | list):
        return '"object"' if isinstance(value, dict) else '"array"'
    return str(value)
