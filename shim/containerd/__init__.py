"""`containerd-shim-spin-v2`: the Spin runtime behind containerd's runtime v2 shim protocol.

containerd (and kubelet through its CRI plugin) starts the binary for every task whose runtime
is `io.containerd.spin.v2` (or a RuntimeClass handler registered with that runtime type), then
drives it over ttrpc. The Spin runtime itself is `shim`'s (`shim.runner`, `shim.app`), reused.

Modules, from the edge inwards:

- `cli`: the binary's actions (`start`, `delete`, the daemon, `_workload`).
- `daemon`: `start` (socket address, one daemon per pod sandbox), `delete`, the daemon's loop.
- `ttrpc`: containerd's ttrpc framing and a threaded server/client on `protobuf`.
- `service`: the `containerd.task.v2.Task` methods, errors as gRPC codes.
- `tasks`: the tasks' state machine and processes; `events`: /tasks/* through the publish binary.
- `workload`: a task's own process: stdio, cgroup, namespaces, mounts, then the app or a holder.
- `spec`, `cgroups`, `mounts`, `linux`: the OCI spec, cgroup v1/v2, mounts, raw syscalls.
- `proto`: message code generated from containerd's .proto files (`scripts/gen-shim-protos`).

Errors: `shim.containerd.errors` (each with the gRPC code containerd maps).
"""
