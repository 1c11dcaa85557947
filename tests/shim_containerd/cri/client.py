"""A thin, typed CRI client: the calls kubelet makes, over containerd's gRPC socket.

`CriClient` wraps the generated `runtime.v1` stubs (`api_pb2_grpc`) with one method per RPC the
tests use, a default deadline on every call, and one error type: `CriError` carries the RPC
name, the gRPC status code and containerd's message, chained to the original `grpc.RpcError`.

`pod_sandbox_config` and `container_config` build the two request bodies the way kubelet fills
them for an ordinary pod (metadata, hostname, log directory, namespace options), so a test only
names what it cares about. Nothing here starts or stops processes; the containerd fixture does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from cri import api_pb2 as pb
from cri import api_pb2_grpc as pb_grpc

__all__ = [
    "CriClient",
    "CriError",
    "container_config",
    "mount",
    "pb",
    "pod_sandbox_config",
]

_Reply = TypeVar("_Reply", bound=Message)

DEFAULT_TIMEOUT = 30.0
"""Deadline (seconds) for one CRI call; RunPodSandbox and StopPodSandbox run CNI and the shim."""


class CriError(Exception):
    """A CRI call failed: `method` is the RPC, `code` the gRPC status, `details` containerd's text."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"CRI {method} failed: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details


class CriClient:
    """One gRPC channel to containerd's CRI plugin (`runtime.v1` RuntimeService and ImageService)."""

    def __init__(self, address: Path | str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = str(address)
        self.timeout = timeout
        # No HTTP proxy for a unix socket, whatever the environment says.
        self._channel = grpc.insecure_channel(
            f"unix://{self.address}", options=[("grpc.enable_http_proxy", 0)]
        )
        # The generated stubs are untyped; `_call` checks each reply's type instead.
        self._runtime: Any = pb_grpc.RuntimeServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._images: Any = pb_grpc.ImageServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> CriClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, stub: Any, method: str, request: Message, reply_type: type[_Reply], timeout: float | None
    ) -> _Reply:
        """One unary RPC with a deadline; gRPC errors become CriError, chained."""
        try:
            reply = getattr(stub, method)(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as err:
            code = err.code() if isinstance(err, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = (err.details() if isinstance(err, grpc.Call) else str(err)) or ""
            raise CriError(method, code, details) from err
        if not isinstance(reply, reply_type):
            raise TypeError(f"CRI {method} answered {type(reply).__name__}, not {reply_type.__name__}")
        return reply

    # -- runtime ------------------------------------------------------------------------------

    def version(self, *, timeout: float | None = None) -> pb.VersionResponse:
        return self._call(
            self._runtime, "Version", pb.VersionRequest(version="v1"), pb.VersionResponse, timeout
        )

    def status(self, *, verbose: bool = False, timeout: float | None = None) -> pb.StatusResponse:
        return self._call(
            self._runtime, "Status", pb.StatusRequest(verbose=verbose), pb.StatusResponse, timeout
        )

    def run_pod_sandbox(
        self, config: pb.PodSandboxConfig, handler: str = "", *, timeout: float | None = None
    ) -> str:
        """RunPodSandbox; `handler` is the RuntimeClass handler ("" = containerd's default runtime)."""
        request = pb.RunPodSandboxRequest(config=config, runtime_handler=handler)
        return self._call(
            self._runtime, "RunPodSandbox", request, pb.RunPodSandboxResponse, timeout
        ).pod_sandbox_id

    def stop_pod_sandbox(self, sandbox_id: str, *, timeout: float | None = None) -> None:
        request = pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id)
        self._call(self._runtime, "StopPodSandbox", request, pb.StopPodSandboxResponse, timeout)

    def remove_pod_sandbox(self, sandbox_id: str, *, timeout: float | None = None) -> None:
        request = pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id)
        self._call(self._runtime, "RemovePodSandbox", request, pb.RemovePodSandboxResponse, timeout)

    def pod_sandbox_status(
        self, sandbox_id: str, *, verbose: bool = False, timeout: float | None = None
    ) -> pb.PodSandboxStatusResponse:
        request = pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose)
        return self._call(self._runtime, "PodSandboxStatus", request, pb.PodSandboxStatusResponse, timeout)

    def list_pod_sandbox(
        self,
        *,
        sandbox_id: str = "",
        state: pb.PodSandboxState | None = None,
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> list[pb.PodSandbox]:
        filt = pb.PodSandboxFilter(id=sandbox_id, label_selector=dict(labels or {}))
        if state is not None:
            filt.state.state = state
        request = pb.ListPodSandboxRequest(filter=filt)
        return list(
            self._call(self._runtime, "ListPodSandbox", request, pb.ListPodSandboxResponse, timeout).items
        )

    def create_container(
        self,
        sandbox_id: str,
        config: pb.ContainerConfig,
        sandbox_config: pb.PodSandboxConfig,
        *,
        timeout: float | None = None,
    ) -> str:
        request = pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
        )
        return self._call(
            self._runtime, "CreateContainer", request, pb.CreateContainerResponse, timeout
        ).container_id

    def start_container(self, container_id: str, *, timeout: float | None = None) -> None:
        request = pb.StartContainerRequest(container_id=container_id)
        self._call(self._runtime, "StartContainer", request, pb.StartContainerResponse, timeout)

    def stop_container(self, container_id: str, grace: int = 0, *, timeout: float | None = None) -> None:
        """StopContainer: the stop signal, then SIGKILL after `grace` seconds (0 = SIGKILL at once)."""
        request = pb.StopContainerRequest(container_id=container_id, timeout=grace)
        deadline = grace + (self.timeout if timeout is None else timeout)
        self._call(self._runtime, "StopContainer", request, pb.StopContainerResponse, deadline)

    def remove_container(self, container_id: str, *, timeout: float | None = None) -> None:
        request = pb.RemoveContainerRequest(container_id=container_id)
        self._call(self._runtime, "RemoveContainer", request, pb.RemoveContainerResponse, timeout)

    def container_status(
        self, container_id: str, *, verbose: bool = False, timeout: float | None = None
    ) -> pb.ContainerStatusResponse:
        request = pb.ContainerStatusRequest(container_id=container_id, verbose=verbose)
        return self._call(self._runtime, "ContainerStatus", request, pb.ContainerStatusResponse, timeout)

    def list_containers(
        self,
        *,
        sandbox_id: str = "",
        state: pb.ContainerState | None = None,
        labels: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> list[pb.Container]:
        filt = pb.ContainerFilter(pod_sandbox_id=sandbox_id, label_selector=dict(labels or {}))
        if state is not None:
            filt.state.state = state
        request = pb.ListContainersRequest(filter=filt)
        return list(
            self._call(
                self._runtime, "ListContainers", request, pb.ListContainersResponse, timeout
            ).containers
        )

    def wait_container_state(
        self, container_id: str, state: pb.ContainerState, *, within: float = 30.0
    ) -> pb.ContainerStatus:
        """Poll ContainerStatus until the container reaches `state`; TimeoutError names the last state."""
        deadline = time.monotonic() + within
        while True:
            status = self.container_status(container_id).status
            if status.state == state:
                return status
            if time.monotonic() > deadline:
                now, want = pb.ContainerState.Name(status.state), pb.ContainerState.Name(state)
                raise TimeoutError(
                    f"container {container_id[:12]} is {now} after {within}s, not {want} "
                    f"(reason {status.reason!r}, message {status.message!r})"
                )
            time.sleep(0.05)

    # -- images -------------------------------------------------------------------------------

    def list_images(self, *, timeout: float | None = None) -> list[pb.Image]:
        request = pb.ListImagesRequest()
        return list(self._call(self._images, "ListImages", request, pb.ListImagesResponse, timeout).images)

    def image_status(self, image: str, *, timeout: float | None = None) -> pb.Image | None:
        """The image as CRI sees it, or None when CRI does not know `image` (a name or an id)."""
        request = pb.ImageStatusRequest(image=pb.ImageSpec(image=image))
        reply = self._call(self._images, "ImageStatus", request, pb.ImageStatusResponse, timeout)
        return reply.image if reply.HasField("image") else None


def pod_sandbox_config(
    name: str,
    *,
    log_directory: Path,
    namespace: str = "default",
    uid: str | None = None,
    attempt: int = 0,
    cgroup_parent: str = "",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> pb.PodSandboxConfig:
    """A PodSandboxConfig as kubelet sends it for a pod with pod networking.

    `log_directory` is the pod's log dir (kubelet: /var/log/pods/<ns>_<name>_<uid>); container log
    paths are relative to it. There is no DNS config: containerd then copies the host's resolv.conf
    into the sandbox, and the pod has no cluster DNS. `cgroup_parent` is sent only when given.
    """
    uid = uid or str(uuid.uuid4())
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=namespace, attempt=attempt),
        hostname=name,
        log_directory=str(log_directory),
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
    )
    config.linux.cgroup_parent = cgroup_parent
    options = config.linux.security_context.namespace_options
    options.network = pb.POD
    options.pid = pb.CONTAINER
    options.ipc = pb.POD
    return config


def mount(container_path: str, host_path: Path | str, *, readonly: bool = False) -> pb.Mount:
    """A host-path volume mount (propagation private, as kubelet sends for hostPath/emptyDir)."""
    return pb.Mount(container_path=container_path, host_path=str(host_path), readonly=readonly)


def container_config(
    name: str,
    image: str,
    *,
    command: Iterable[str] = (),
    args: Iterable[str] = (),
    envs: Mapping[str, str] | None = None,
    working_dir: str = "",
    log_path: str = "",
    mounts: Iterable[pb.Mount] = (),
    attempt: int = 0,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> pb.ContainerConfig:
    """A ContainerConfig as kubelet sends it. `log_path` is relative to the pod's log directory
    (kubelet uses `<container name>/<restart count>.log`); empty means CRI keeps no log file."""
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=attempt),
        image=pb.ImageSpec(image=image),
        command=list(command),
        args=list(args),
        working_dir=working_dir,
        envs=[pb.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
        mounts=list(mounts),
        log_path=log_path,
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
    )
    options = config.linux.security_context.namespace_options
    options.network = pb.POD
    options.pid = pb.CONTAINER
    options.ipc = pb.POD
    return config
