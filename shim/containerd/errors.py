"""Errors of the containerd shim; each carries the gRPC code containerd maps it with
(`errdefs.FromGRPC`) and a message naming the task it is about.

    TaskError                 UNKNOWN (2): the app could not be loaded or started (the message is
    │                         the one `spindle shim up` prints), a mount or cgroup failed
    ├── InvalidArgument       INVALID_ARGUMENT (3): a malformed request or spec
    ├── NotFound              NOT_FOUND (5): no such task
    ├── AlreadyExists         ALREADY_EXISTS (6)
    ├── FailedPrecondition    FAILED_PRECONDITION (9): not in a state that allows the call
    └── Unimplemented         UNIMPLEMENTED (12): exec, pause, resume, checkpoint
"""

from __future__ import annotations


class TaskError(Exception):
    code = 2


class InvalidArgument(TaskError):
    code = 3


class NotFound(TaskError):
    code = 5


class AlreadyExists(TaskError):
    code = 6


class FailedPrecondition(TaskError):
    code = 9


class Unimplemented(TaskError):
    code = 12
