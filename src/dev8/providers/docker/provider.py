"""The Docker provider: a workspace is three labelled volumes, its own bridge network and
one container.

This module is the lifecycle and observation; helper jobs on volumes are in ``helpers``,
the volumes themselves (and their enforced quotas) in ``volumes``, the workspace networks
in ``networks``, the mapping of engine errors in ``errors`` and of engine states in
``status``.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import replace
from typing import Any

import docker
from docker.errors import APIError, DockerException
from docker.errors import ImageNotFound as DockerImageNotFound
from docker.errors import NotFound as DockerNotFound
from docker.models.containers import Container

from dev8.core.errors import Conflict, EngineUnavailable, ImageNotFound, NotFound, ProviderError
from dev8.core.naming import (
    LABEL_WORKSPACE_ID,
    container_name,
)
from dev8.core.states import ACTIVE_CONTAINER, ContainerState
from dev8.providers.base import PORTS, ExecResult, RuntimeStatus, VolumeInfo, WorkspaceSpec
from dev8.providers.docker.client import connect
from dev8.providers.docker.errors import engine_errors, port_conflict
from dev8.providers.docker.execs import run_exec
from dev8.providers.docker.helpers import DockerHelperJobs, volume_info
from dev8.providers.docker.networks import WorkspaceNetworks, subnet_pool
from dev8.providers.docker.specs import (
    RESTART_WHILE_RUNNING,
    RESTART_WHILE_STOPPED,
    container_spec,
)
from dev8.providers.docker.status import inspected_status, workspace_statuses
from dev8.providers.docker.volumes import DockerVolumes


def free_host_ports(fixed: Mapping[str, int], roles: Iterable[str] = PORTS) -> dict[str, int]:
    """``fixed`` plus a free loopback port for each of ``roles`` it lacks.

    The kernel picks the ports; dev8 pins them on the container so a workspace keeps its
    addresses across stop/start, engine restarts and rebuilds (engine-chosen ports change
    at every start).
    """
    chosen = dict(fixed)
    with ExitStack() as sockets:
        for role in roles:
            if role not in chosen:
                sock = sockets.enter_context(socket.socket())
                sock.bind(("127.0.0.1", 0))
                chosen[role] = sock.getsockname()[1]
    return chosen


class DockerProvider(DockerVolumes, DockerHelperJobs, WorkspaceNetworks):
    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client
        self.subnets = subnet_pool()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    @engine_errors
    def ping(self) -> None:
        self.client.ping()

    # Lookups ---------------------------------------------------------------------------
    def _container(self, workspace_id: str) -> Container | None:
        try:
            return self.client.containers.get(container_name(workspace_id))
        except DockerNotFound:
            return None

    def _require(self, workspace_id: str) -> Container:
        container = self._container(workspace_id)
        if container is None:
            raise NotFound(f"workspace {workspace_id} has no container")
        return container

    @engine_errors
    def image_id(self, reference: str) -> str:
        try:
            return str(self.client.images.get(reference).id)
        except DockerImageNotFound as exc:
            raise ImageNotFound(
                f"image {reference} is not on this engine; build it with `dev8 image build` "
                "or pass --image"
            ) from exc

    # Lifecycle -------------------------------------------------------------------------
    @engine_errors
    def create(self, spec: WorkspaceSpec) -> RuntimeStatus:
        image_id = self.image_id(spec.image)
        existing = self._container(spec.workspace_id)
        if existing is not None:
            if existing.image.id != image_id:
                raise Conflict(
                    f"workspace {spec.name} already has a container on another image; "
                    "rebuild it instead"
                )
            return _status_of(existing)
        spec = replace(spec, host_ports=free_host_ports(spec.host_ports, spec.published))
        created_network = self._ensure_network(spec)
        try:
            created_volumes = self._ensure_volumes(spec)
            try:
                container = self.client.containers.create(**container_spec(spec))
            except BaseException:
                self._remove_volume_names(created_volumes)
                raise
        except BaseException:
            if created_network:
                with suppress(DockerException):
                    self._remove_network(spec.workspace_id)
            raise
        return _status_of(container, reload=True)

    @engine_errors
    def start(self, workspace_id: str) -> RuntimeStatus:
        container = self._require(workspace_id)
        container.update(restart_policy=RESTART_WHILE_RUNNING)
        if container.status == "paused":  # frozen for a snapshot by a dev8 that then died
            container.unpause()
        elif container.status != "running":
            self._attach_volumes(workspace_id)
            try:
                container.start()
            except APIError as exc:
                conflict = port_conflict(exc)
                if conflict is not None:
                    raise conflict from exc
                raise
        return _status_of(container, reload=True)

    @engine_errors
    def stop(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        container = self._container(workspace_id)
        if container is None:
            return RuntimeStatus(ContainerState.MISSING)
        container.update(restart_policy=RESTART_WHILE_STOPPED)  # also when it is down already
        if _status_of(container).state in ACTIVE_CONTAINER:
            container.stop(timeout=timeout)
        return _status_of(container, reload=True)

    @engine_errors
    def restart(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        container = self._require(workspace_id)
        container.update(restart_policy=RESTART_WHILE_RUNNING)
        self._attach_volumes(workspace_id)
        container.restart(timeout=timeout)
        return _status_of(container, reload=True)

    @engine_errors
    def freeze(self, workspace_id: str) -> bool:
        container = self._container(workspace_id)
        if container is None or container.status != "running":
            return False
        container.pause()
        return True

    @engine_errors
    def thaw(self, workspace_id: str) -> None:
        container = self._container(workspace_id)
        if container is not None and container.status == "paused":
            container.unpause()

    @engine_errors
    def remove(self, workspace_id: str) -> None:
        container = self._container(workspace_id)
        if container is not None:
            with suppress(DockerNotFound):
                container.remove(force=True)
        self._remove_network(workspace_id)

    # Observation -----------------------------------------------------------------------
    @engine_errors
    def status(self, workspace_id: str) -> RuntimeStatus:
        container = self._container(workspace_id)
        if container is None:
            return RuntimeStatus(ContainerState.MISSING)
        return _status_of(container)

    @engine_errors
    def statuses(self) -> dict[str, RuntimeStatus]:
        # The low-level list: one request, no inspect per container.
        return workspace_statuses(
            self.client.api.containers(all=True, filters={"label": LABEL_WORKSPACE_ID})
        )

    @engine_errors
    def exec(
        self, workspace_id: str, argv: Sequence[str], user: str = "dev8", workdir: str | None = None
    ) -> ExecResult:
        container = self._require(workspace_id)
        if container.status != "running":
            raise Conflict(f"workspace {workspace_id} is not running")
        return run_exec(
            self.client.api,
            container.id,
            argv,
            user=user,
            workdir=workdir,
            environment=_user_env(user),
        )

    @engine_errors
    def exec_argv(
        self, workspace_id: str, argv: Sequence[str], *, user: str, workdir: str, tty: bool
    ) -> list[str]:
        container = self._require(workspace_id)
        if container.status != "running":
            raise Conflict(f"workspace {workspace_id} is not running")
        docker_cli = shutil.which("docker")
        if docker_cli is None:
            raise ProviderError("`dev8 exec` needs the docker command; install docker.io")
        env = [f"--env={key}={value}" for key, value in _user_env(user).items()]
        flags = ["-i", "-t"] if tty else ["-i"]
        return [
            docker_cli,
            "exec",
            *flags,
            f"--user={user}",
            f"--workdir={workdir}",
            *env,
            container.id,
            *argv,
        ]

    def logs(
        self, workspace_id: str, follow: bool = False, tail: int | None = None
    ) -> Iterator[bytes]:
        """Raises engine errors as dev8 errors at the call and while iterating."""
        stream = self._log_stream(workspace_id, follow, tail)
        return _mapped_stream(stream)

    @engine_errors
    def _log_stream(self, workspace_id: str, follow: bool, tail: int | None) -> Iterator[bytes]:
        container = self._require(workspace_id)
        kwargs: dict[str, Any] = {"stream": True, "follow": follow}
        if tail is not None:
            kwargs["tail"] = tail
        return iter(container.logs(**kwargs))

    @engine_errors
    def volumes(self, workspace_id: str | None = None) -> list[VolumeInfo]:
        label = LABEL_WORKSPACE_ID + (f"={workspace_id}" if workspace_id else "")
        found = self.client.volumes.list(filters={"label": label})
        return sorted((volume_info(v.attrs) for v in found), key=lambda v: v.name)


def _status_of(container: Container, reload: bool = False) -> RuntimeStatus:
    if reload:
        container.reload()
    return inspected_status(container.id, container.attrs)


def _mapped_stream(stream: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from stream
    except APIError as exc:
        raise ProviderError(f"the Docker engine refused: {exc}") from exc
    except (DockerException, ConnectionError, OSError) as exc:
        raise EngineUnavailable(f"lost the Docker engine while reading logs: {exc}") from exc


def _user_env(user: str) -> dict[str, str]:
    home = "/root" if user == "root" else f"/home/{user}"
    return {"HOME": home, "USER": user, "LOGNAME": user}
