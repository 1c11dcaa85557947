"""Sample ReconcileRecords shaped like the engine's output, for history and report tests."""

from __future__ import annotations

from reconciler.changeset import (
    Action,
    Attribution,
    ChangeSetEntry,
    FieldDrift,
    Health,
    ObjectRef,
    ReconcileRecord,
    Revision,
)

SECRET_VALUE = "cGFzc3dvcmQtc2VjcmV0"  # what a buggy engine might let through


def drift_record(
    source: str = "example",
    sha: str = "3f2a9c1d7e5b4a6c8d0e1f2a3b4c5d6e7f8a9b0c",
    started: str = "2026-05-04T10:05:00+00:00",
    message: str = "Scale hello to 2\n\nBody line",
) -> ReconcileRecord:
    deploy = ObjectRef("apps/v1", "Deployment", "default", "hello")
    secret = ObjectRef("v1", "Secret", "default", "hello-creds")
    return ReconcileRecord(
        source=source,
        revision=Revision(sha=sha, author="Ada Author <ada@example.com>", time="2026-05-04T09:58:00+00:00",
                          message=message),
        started=started,
        finished=started.replace(":05:00", ":05:03"),
        mode="apply",
        entries=[
            ChangeSetEntry(
                ref=deploy,
                action=Action.CONFIGURED,
                health=Health.HEALTHY,
                patch=({"op": "replace", "path": "/spec/replicas", "value": 2},
                       {"op": "remove", "path": "/metadata/labels/hotfix"}),
                fields=(
                    FieldDrift(".spec.replicas", 5, 2,
                               (Attribution("kubectl-scale", "Update", "2026-05-04T10:02:00Z"),)),
                    FieldDrift(".metadata.labels.hotfix", "yes", None,
                               (Attribution("kubectl-edit", "Update", "2026-05-04T10:03:30Z"),)),
                ),
                source_path="apps/hello/spinapp.yaml",
            ),
            ChangeSetEntry(
                ref=secret,
                action=Action.CONFIGURED,
                health=Health.NOT_CHECKED,
                patch=({"op": "replace", "path": "/data/password", "value": SECRET_VALUE},
                       {"op": "add", "path": "/data", "value": {"token": SECRET_VALUE}}),
                fields=(FieldDrift(".data.password", "b2xk", SECRET_VALUE,
                                   (Attribution("kubectl-edit", "Update", "2026-05-04T10:04:00Z"),)),),
            ),
            ChangeSetEntry(ref=ObjectRef("v1", "Service", "default", "hello"), action=Action.UNCHANGED,
                           health=Health.HEALTHY),
            ChangeSetEntry(ref=ObjectRef("v1", "ConfigMap", "default", "bad|name"), action=Action.FAILED,
                           message="ConfigMap/default/bad|name: <immutable> field changed"),
            ChangeSetEntry(ref=ObjectRef("node.k8s.io/v1", "RuntimeClass", None, "wasmtime-spin-v2"),
                           action=Action.CREATED, health=Health.HEALTHY),
        ],
        errors=[],
    )
