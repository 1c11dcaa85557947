"""Protobuf messages for containerd-shim-spin-v2. Generated code: do not edit.

Regenerate with ``scripts/gen-shim-protos`` (it installs the Debian packages below when they are
missing and needs grpcio-tools from the ``[test]`` extra). The script strips the Go-only gogoproto
and fieldpath options from the upstream .proto files, compiles them with
``python3 -m grpc_tools.protoc --python_out --pyi_out`` (the .pyi stubs let ``mypy --strict``
check the callers) and makes the imports between the modules package-relative.

Proto package names are upstream's (``containerd.task.v2``, ``containerd.events``, ...): ttrpc
service names and ``Any`` type URLs are derived from them.

Generated from:
    shim_pb2                github.com/containerd/containerd/runtime/v2/task/shim.proto
    mount_pb2               github.com/containerd/containerd/api/types/mount.proto
    task_pb2                github.com/containerd/containerd/api/types/task/task.proto
    events_task_pb2         github.com/containerd/containerd/api/events/task.proto
    events_ttrpc_pb2        github.com/containerd/containerd/api/services/ttrpc/events/v1/events.proto
    runtimeoptions_pb2      github.com/containerd/containerd/pkg/runtimeoptions/v1/api.proto
    cgroups_v1_metrics_pb2  github.com/containerd/cgroups/stats/v1/metrics.proto
    cgroups_v2_metrics_pb2  github.com/containerd/cgroups/v2/stats/metrics.proto
    ttrpc_pb2               src/ttrpc.proto (ttrpc's Request/Response/KeyValue, package ttrpc)
    status_pb2              src/google/rpc/status.proto (google.rpc.Status)

Generated with:
    golang-github-containerd-containerd-dev 1.6.20~ds1-1+deb12u3
    golang-github-containerd-cgroups-dev 1.0.4-1
    grpcio-tools 1.85.4

The modules assert protobuf runtime >= 7.35.1 when imported.
"""
