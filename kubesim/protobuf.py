"""Decoding the Kubernetes protobuf encoding of the objects kubectl's typed generators send
(`kubectl create namespace | configmap | secret | serviceaccount | deployment | service | job |
role | clusterrole | rolebinding | clusterrolebinding`) into the JSON kubesim stores.

kubectl's typed clientset always sends protobuf and client-go does not fall back to JSON on a 415
(it does so only for CBOR), so the server has to read these bodies; nothing a server advertises in
discovery or OpenAPI changes that.

The wire format is the `k8s\\0` magic, then a `runtime.Unknown` envelope (typeMeta, raw), where raw
is the object's own message. `MESSAGES` maps each message's field numbers (those of k8s.io/api's
generated.proto) to JSON names and shapes. Go writes every non-pointer field, so an empty string, a
zero or false in a non-pointer field is dropped, as Go's JSON `omitempty` would; pointer fields
(`int*`, `bool*`) keep their zeros. A non-empty field kubesim does not know is an error (a 415 that
names it and the JSON media types), never silently dropped; a malformed body is a 400.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

Value = int | bytes


class ProtobufError(ValueError):
    """The body is not a protobuf message kubesim can read."""


class NotRead(ProtobufError):
    """A well-formed body with a kind or field kubesim does not read from protobuf (JSON works)."""


# Field shapes: "str", "int", "bool" (non-pointer: zero dropped), "int*", "bool*" (pointers),
# "bytes" (base64 in JSON), "time" (metav1.Time), "intstr" (IntOrString), "skip" (read and
# ignored: status, which a create or update of these kinds never takes from the body),
# "[X]" repeated X, "{X}" map from string to X, and message names.
_OBJECT_META = {
    1: ("name", "str"),
    2: ("generateName", "str"),
    3: ("namespace", "str"),
    4: ("selfLink", "str"),
    5: ("uid", "str"),
    6: ("resourceVersion", "str"),
    7: ("generation", "int"),
    8: ("creationTimestamp", "time"),
    9: ("deletionTimestamp", "time"),
    10: ("deletionGracePeriodSeconds", "int*"),
    11: ("labels", "{str}"),
    12: ("annotations", "{str}"),
    13: ("ownerReferences", "[OwnerReference]"),
    14: ("finalizers", "[str]"),
}

MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    "ObjectMeta": _OBJECT_META,
    "OwnerReference": {
        1: ("kind", "str"),
        3: ("name", "str"),
        4: ("uid", "str"),
        5: ("apiVersion", "str"),
        6: ("controller", "bool*"),
        7: ("blockOwnerDeletion", "bool*"),
    },
    "LabelSelector": {1: ("matchLabels", "{str}"), 2: ("matchExpressions", "[LabelSelectorRequirement]")},
    "LabelSelectorRequirement": {1: ("key", "str"), 2: ("operator", "str"), 3: ("values", "[str]")},
    "LocalObjectReference": {1: ("name", "str")},
    "ObjectReference": {
        1: ("kind", "str"),
        2: ("namespace", "str"),
        3: ("name", "str"),
        4: ("uid", "str"),
        5: ("apiVersion", "str"),
        6: ("resourceVersion", "str"),
        7: ("fieldPath", "str"),
    },
    # core/v1
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("status", "skip")},
    "NamespaceSpec": {1: ("finalizers", "[str]")},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "{str}"),
        3: ("binaryData", "{bytes}"),
        4: ("immutable", "bool*"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "{bytes}"),
        3: ("type", "str"),
        4: ("stringData", "{str}"),
        5: ("immutable", "bool*"),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        2: ("secrets", "[ObjectReference]"),
        3: ("imagePullSecrets", "[LocalObjectReference]"),
        4: ("automountServiceAccountToken", "bool*"),
    },
    "Pod": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec"), 3: ("status", "skip")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {
        2: ("containers", "[Container]"),
        3: ("restartPolicy", "str"),
        4: ("terminationGracePeriodSeconds", "int*"),
        5: ("activeDeadlineSeconds", "int*"),
        6: ("dnsPolicy", "str"),
        7: ("nodeSelector", "{str}"),
        8: ("serviceAccountName", "str"),
        9: ("serviceAccount", "str"),
        10: ("nodeName", "str"),
        11: ("hostNetwork", "bool"),
        12: ("hostPID", "bool"),
        13: ("hostIPC", "bool"),
        15: ("imagePullSecrets", "[LocalObjectReference]"),
        16: ("hostname", "str"),
        17: ("subdomain", "str"),
        19: ("schedulerName", "str"),
        20: ("initContainers", "[Container]"),
        24: ("priorityClassName", "str"),
    },
    "Container": {
        1: ("name", "str"),
        2: ("image", "str"),
        3: ("command", "[str]"),
        4: ("args", "[str]"),
        5: ("workingDir", "str"),
        6: ("ports", "[ContainerPort]"),
        7: ("env", "[EnvVar]"),
        8: ("resources", "ResourceRequirements"),
        13: ("terminationMessagePath", "str"),
        14: ("imagePullPolicy", "str"),
        16: ("stdin", "bool"),
        17: ("stdinOnce", "bool"),
        18: ("tty", "bool"),
        20: ("terminationMessagePolicy", "str"),
    },
    "ContainerPort": {
        1: ("name", "str"),
        2: ("hostPort", "int"),
        3: ("containerPort", "int"),
        4: ("protocol", "str"),
        5: ("hostIP", "str"),
    },
    "EnvVar": {1: ("name", "str"), 2: ("value", "str")},
    "Quantity": {1: ("string", "str")},
    "ResourceRequirements": {1: ("limits", "{Quantity}"), 2: ("requests", "{Quantity}")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec"), 3: ("status", "skip")},
    "ServiceSpec": {
        1: ("ports", "[ServicePort]"),
        2: ("selector", "{str}"),
        3: ("clusterIP", "str"),
        4: ("type", "str"),
        5: ("externalIPs", "[str]"),
        7: ("sessionAffinity", "str"),
        8: ("loadBalancerIP", "str"),
        9: ("loadBalancerSourceRanges", "[str]"),
        10: ("externalName", "str"),
        11: ("externalTrafficPolicy", "str"),
        12: ("healthCheckNodePort", "int"),
        13: ("publishNotReadyAddresses", "bool"),
    },
    "ServicePort": {
        1: ("name", "str"),
        2: ("protocol", "str"),
        3: ("port", "int"),
        4: ("targetPort", "intstr"),
        5: ("nodePort", "int"),
        6: ("appProtocol", "str"),
    },
    # apps/v1, batch/v1
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec"), 3: ("status", "skip")},
    "DeploymentSpec": {
        1: ("replicas", "int*"),
        2: ("selector", "LabelSelector"),
        3: ("template", "PodTemplateSpec"),
        4: ("strategy", "DeploymentStrategy"),
        5: ("minReadySeconds", "int"),
        6: ("revisionHistoryLimit", "int*"),
        7: ("paused", "bool"),
        9: ("progressDeadlineSeconds", "int*"),
    },
    "DeploymentStrategy": {1: ("type", "str"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "intstr"), 2: ("maxSurge", "intstr")},
    "Job": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec"), 3: ("status", "skip")},
    "JobSpec": {
        1: ("parallelism", "int*"),
        2: ("completions", "int*"),
        3: ("activeDeadlineSeconds", "int*"),
        4: ("selector", "LabelSelector"),
        5: ("manualSelector", "bool*"),
        6: ("template", "PodTemplateSpec"),
        7: ("backoffLimit", "int*"),
        8: ("ttlSecondsAfterFinished", "int*"),
        9: ("completionMode", "str"),
        10: ("suspend", "bool*"),
    },
    # autoscaling/v1 (kubectl autoscale)
    "HorizontalPodAutoscaler": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "HorizontalPodAutoscalerSpec"),
        3: ("status", "skip"),
    },
    "HorizontalPodAutoscalerSpec": {
        1: ("scaleTargetRef", "CrossVersionObjectReference"),
        2: ("minReplicas", "int*"),
        3: ("maxReplicas", "int"),
        4: ("targetCPUUtilizationPercentage", "int*"),
    },
    "CrossVersionObjectReference": {1: ("kind", "str"), 2: ("name", "str"), 3: ("apiVersion", "str")},
    # rbac.authorization.k8s.io/v1
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[PolicyRule]")},
    "ClusterRole": {
        1: ("metadata", "ObjectMeta"),
        2: ("rules", "[PolicyRule]"),
        3: ("aggregationRule", "AggregationRule"),
    },
    "PolicyRule": {
        1: ("verbs", "[str]"),
        2: ("apiGroups", "[str]"),
        3: ("resources", "[str]"),
        4: ("resourceNames", "[str]"),
        5: ("nonResourceURLs", "[str]"),
    },
    "AggregationRule": {1: ("clusterRoleSelectors", "[LabelSelector]")},
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[Subject]"), 3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {
        1: ("metadata", "ObjectMeta"),
        2: ("subjects", "[Subject]"),
        3: ("roleRef", "RoleRef"),
    },
    "Subject": {1: ("kind", "str"), 2: ("apiGroup", "str"), 3: ("name", "str"), 4: ("namespace", "str")},
    "RoleRef": {1: ("apiGroup", "str"), 2: ("kind", "str"), 3: ("name", "str")},
    # authorization.k8s.io/v1 (kubectl auth can-i)
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectAccessReviewSpec"),
        3: ("status", "skip"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "ResourceAttributes": {
        1: ("namespace", "str"),
        2: ("verb", "str"),
        3: ("group", "str"),
        4: ("version", "str"),
        5: ("resource", "str"),
        6: ("subresource", "str"),
        7: ("name", "str"),
        8: ("fieldSelector", "skip"),
        9: ("labelSelector", "skip"),
    },
    "NonResourceAttributes": {1: ("path", "str"), 2: ("verb", "str")},
    "SubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SubjectAccessReviewSpec"),
        3: ("status", "skip"),
    },
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
        3: ("user", "str"),
        4: ("groups", "[str]"),
        5: ("extra", "skip"),
        6: ("uid", "str"),
    },
    "SelfSubjectRulesReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectRulesReviewSpec"),
        3: ("status", "skip"),
    },
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "str")},
    # authentication.k8s.io/v1 (kubectl auth whoami, kubectl create token)
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta"), 2: ("status", "skip")},
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec"), 3: ("status", "skip")},
    "TokenRequestSpec": {
        1: ("audiences", "[str]"),
        3: ("boundObjectRef", "BoundObjectReference"),
        4: ("expirationSeconds", "int*"),
    },
    "BoundObjectReference": {
        1: ("kind", "str"),
        2: ("apiVersion", "str"),
        3: ("name", "str"),
        4: ("uid", "str"),
    },
}

# The top-level kinds read, by (apiVersion, kind).
KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("autoscaling/v1", "HorizontalPodAutoscaler"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io/v1", "SubjectAccessReview"),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"),
    ("authentication.k8s.io/v1", "TokenRequest"),
}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; ProtobufError when it cannot be read."""
    try:
        return _decode(body)
    except ProtobufError:
        raise
    except (ValueError, OverflowError, OSError) as exc:  # e.g. a timestamp out of range
        raise ProtobufError(f"unreadable protobuf body: {exc}") from exc


def _decode(body: bytes) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    api_version = kind = ""
    raw = b""
    for n, x in fields(body[len(MAGIC) :]):
        if n == 1:
            for m, y in fields(_msg(x)):
                if m == 1:
                    api_version = _text(y)
                elif m == 2:
                    kind = _text(y)
        elif n == 2:
            raw = _msg(x)
    if (api_version, kind) not in KINDS:
        raise NotRead(f"protobuf bodies are read for {sorted(k for _, k in KINDS)} only, not {kind!r}")
    return {"apiVersion": api_version, "kind": kind, **message(kind, raw)}


def message(name: str, buf: bytes) -> dict[str, Any]:
    """One message as JSON, by its `MESSAGES` table."""
    table = MESSAGES[name]
    out: dict[str, Any] = {}
    for n, x in fields(buf):
        known = table.get(n)
        if known is None:
            if x in (0, b""):  # a zero-valued field kubesim does not know: JSON would omit it
                continue
            raise NotRead(f"field {n} of {name} is not read by kubesim")
        key, shape = known
        if shape == "[str]":  # list elements are kept even when empty ("" is the core API group)
            out.setdefault(key, []).append(_text(x))
        elif shape.startswith("["):
            out.setdefault(key, []).append(_value(shape[1:-1], x))
        elif shape.startswith("{"):
            entry_key, entry_value = _map_entry(shape[1:-1], x)
            out.setdefault(key, {})[entry_key] = entry_value
        elif shape != "skip":
            value = _value(shape, x)
            if value is not None:
                out[key] = value
    return out


def _value(shape: str, x: Value) -> Any:
    """A single field's JSON value; None when Go's JSON would omit it."""
    if shape == "str":
        return _text(x) or None
    if shape in ("int", "int*", "bool", "bool*"):
        number = _int(x)
        value: Any = bool(number) if shape.startswith("bool") else number
        return value if shape.endswith("*") or value else None
    if shape == "bytes":
        return base64.b64encode(_msg(x)).decode()
    if shape == "time":
        return _time(_msg(x))
    if shape == "intstr":
        return _int_or_string(_msg(x))
    if shape == "Quantity":
        return message("Quantity", _msg(x)).get("string", "0")
    return message(shape, _msg(x))


def _map_entry(shape: str, x: Value) -> tuple[str, Any]:
    key: str = ""
    value: Any = "" if shape != "Quantity" else "0"
    for n, y in fields(_msg(x)):
        if n == 1:
            key = _text(y)
        elif n == 2:
            value = _value(shape, y) if shape != "str" else _text(y)
    return key, value


def _int_or_string(buf: bytes) -> int | str:
    kind, number, text = 0, 0, ""
    for n, x in fields(buf):
        if n == 1:
            kind = _int(x)
        elif n == 2:
            number = _int(x)
        elif n == 3:
            text = _text(x)
    return text if kind == 1 else number


def _time(buf: bytes) -> str | None:
    seconds = 0
    for n, x in fields(buf):
        if n == 1 and isinstance(x, int):
            seconds = x
    if not seconds:  # Go's zero time: JSON null
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- wire format ------------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, Value]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    out: list[tuple[int, Value]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtobufError("truncated field")
            out.append((number, buf[pos : pos + size]))
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _signed(n: int) -> int:
    """Go writes a negative int32 or int64 as its 64-bit two's complement."""
    return n - (1 << 64) if n >= 1 << 63 else n


def _int(v: Value) -> int:
    if not isinstance(v, int):
        raise ProtobufError("expected a number field")
    return _signed(v)


def _text(v: Value) -> str:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a string field")
    try:
        return v.decode()
    except UnicodeDecodeError as exc:
        raise ProtobufError("a string field is not UTF-8") from exc


def _msg(v: Value) -> bytes:
    if not isinstance(v, bytes):
        raise ProtobufError("expected a message field")
    return v
