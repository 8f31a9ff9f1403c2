"""The Docker provider: a workspace is three labelled volumes and one container."""

from __future__ import annotations

import functools
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import replace
from typing import Any

import docker
from docker.errors import APIError, DockerException
from docker.errors import ImageNotFound as DockerImageNotFound
from docker.errors import NotFound as DockerNotFound
from docker.models.containers import Container

from dev8.core.errors import (
    Conflict,
    Dev8Error,
    EngineUnavailable,
    ImageNotFound,
    NotFound,
    ProviderError,
)
from dev8.core.naming import (
    LABEL_ROLE,
    LABEL_WORKSPACE_ID,
    VOLUME_ROLES,
    container_name,
    volume_name,
)
from dev8.providers.base import PORTS, ExecResult, RuntimeStatus, VolumeInfo, WorkspaceSpec
from dev8.providers.docker.client import connect
from dev8.providers.docker.specs import (
    container_spec,
    published_ports,
    summary_ports,
    volume_specs,
)


def _engine_errors(method):
    """Map engine failures that escape a method to dev8 errors with one-line messages."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Dev8Error:
            raise
        except APIError as exc:
            raise ProviderError(f"the Docker engine refused: {_explain(exc)}") from exc
        except DockerException as exc:
            raise EngineUnavailable(f"lost the Docker engine: {exc}") from exc
        except (ConnectionError, OSError) as exc:
            raise EngineUnavailable(f"lost the Docker engine: {exc}") from exc

    return wrapper


def _explain(exc: APIError) -> str:
    explanation = exc.explanation or str(exc)
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation).strip().splitlines()[0]


def _is_port_conflict(exc: APIError) -> bool:
    text = _explain(exc).lower()
    return "port is already allocated" in text or "address already in use" in text


def free_host_ports(fixed: Mapping[str, int]) -> dict[str, int]:
    """``fixed`` plus a free loopback port for each role it lacks.

    The kernel picks the ports; dev8 pins them on the container so a workspace keeps its
    addresses across stop/start, engine restarts and rebuilds (engine-chosen ports change
    at every start).
    """
    chosen = dict(fixed)
    with ExitStack() as sockets:
        for role in PORTS:
            if role not in chosen:
                sock = sockets.enter_context(socket.socket())
                sock.bind(("127.0.0.1", 0))
                chosen[role] = sock.getsockname()[1]
    return chosen


def _port_conflict_message(exc: APIError) -> str:
    found = re.search(r"(\d+\.\d+\.\d+\.\d+):(\d+)", _explain(exc))
    where = f"host port {found.group(2)} on {found.group(1)}" if found else "a host port"
    return f"{where} is already in use by another program; choose a free one"


class DockerProvider:
    name = "docker"

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    @_engine_errors
    def ping(self) -> None:
        self.client.ping()

    # Lookups ---------------------------------------------------------------------------
    def _container(self, workspace_id: str) -> Container | None:
        try:
            return self.client.containers.get(container_name(workspace_id))
        except DockerNotFound:
            return None

    @_engine_errors
    def image_id(self, reference: str) -> str:
        try:
            return self.client.images.get(reference).id
        except DockerImageNotFound:
            raise ImageNotFound(
                f"image {reference} is not on this engine; build it with `dev8 image build` "
                "or pass --image"
            ) from None

    # Lifecycle -------------------------------------------------------------------------
    @_engine_errors
    def create(self, spec: WorkspaceSpec) -> RuntimeStatus:
        image_id = self.image_id(spec.image)
        existing = self._container(spec.workspace_id)
        if existing is not None:
            if existing.image.id != image_id:
                raise Conflict(
                    f"workspace {spec.name} already has a container on another image; "
                    "rebuild it instead"
                )
            return self._status_of(existing)
        spec = replace(spec, host_ports=free_host_ports(spec.host_ports))
        created_volumes = self._ensure_volumes(spec)
        try:
            container = self.client.containers.create(**container_spec(spec))
        except BaseException:
            self._remove_volume_names(created_volumes)
            raise
        return self._status_of(container, reload=True)

    def _ensure_volumes(self, spec: WorkspaceSpec) -> list[str]:
        """Create missing volumes; return the names of those this call created."""
        created = []
        try:
            for volume in volume_specs(spec):
                try:
                    found = self.client.volumes.get(volume["name"])
                except DockerNotFound:
                    self.client.volumes.create(**volume)
                    created.append(volume["name"])
                    continue
                owner_id = (found.attrs.get("Labels") or {}).get(LABEL_WORKSPACE_ID)
                if owner_id != spec.workspace_id:
                    raise Conflict(
                        f"volume {volume['name']} exists but is not labelled as "
                        f"belonging to workspace {spec.workspace_id}"
                    )
        except BaseException:
            self._remove_volume_names(created)
            raise
        return created

    def _remove_volume_names(self, names: Sequence[str]) -> None:
        for name in names:
            with suppress(DockerException):
                self.client.volumes.get(name).remove(force=True)

    @_engine_errors
    def start(self, workspace_id: str) -> RuntimeStatus:
        container = self._require(workspace_id)
        if container.status != "running":
            try:
                container.start()
            except APIError as exc:
                if _is_port_conflict(exc):
                    raise Conflict(_port_conflict_message(exc)) from exc
                raise
        return self._status_of(container, reload=True)

    @_engine_errors
    def stop(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        container = self._container(workspace_id)
        if container is None:
            return RuntimeStatus(state="missing")
        if container.status in ("running", "restarting", "paused"):
            container.stop(timeout=timeout)
        return self._status_of(container, reload=True)

    @_engine_errors
    def restart(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        container = self._require(workspace_id)
        container.restart(timeout=timeout)
        return self._status_of(container, reload=True)

    @_engine_errors
    def remove(self, workspace_id: str) -> None:
        container = self._container(workspace_id)
        if container is None:
            return
        with suppress(DockerNotFound):
            container.remove(force=True)

    @_engine_errors
    def remove_volumes(self, workspace_id: str) -> list[str]:
        removed = []
        for role in VOLUME_ROLES:
            name = volume_name(workspace_id, role)
            try:
                self.client.volumes.get(name).remove(force=True)
                removed.append(name)
            except DockerNotFound:
                continue
        return removed

    def _require(self, workspace_id: str) -> Container:
        container = self._container(workspace_id)
        if container is None:
            raise NotFound(f"workspace {workspace_id} has no container")
        return container

    # Observation -----------------------------------------------------------------------
    @_engine_errors
    def status(self, workspace_id: str) -> RuntimeStatus:
        container = self._container(workspace_id)
        if container is None:
            return RuntimeStatus(state="missing")
        return self._status_of(container)

    @staticmethod
    def _status_of(container: Container, reload: bool = False) -> RuntimeStatus:
        if reload:
            container.reload()
        attrs = container.attrs
        state = attrs.get("State") or {}
        return RuntimeStatus(
            state="restarting" if state.get("Restarting") else state.get("Status", "unknown"),
            container_id=container.id,
            image_id=attrs.get("Image"),
            exit_code=state.get("ExitCode"),
            oom_killed=bool(state.get("OOMKilled")),
            restart_count=int(attrs.get("RestartCount") or 0),
            started_at=state.get("StartedAt"),
            ports=published_ports((attrs.get("NetworkSettings") or {}).get("Ports")),
            host_ports=published_ports((attrs.get("HostConfig") or {}).get("PortBindings")),
            error=state.get("Error") or "",
        )

    @_engine_errors
    def statuses(self) -> dict[str, RuntimeStatus]:
        # The low-level list: one request, no inspect per container.
        summaries = self.client.api.containers(all=True, filters={"label": LABEL_WORKSPACE_ID})
        found: dict[str, RuntimeStatus] = {}
        for summary in summaries:
            labels = summary.get("Labels") or {}
            if labels.get(LABEL_ROLE) != "container":
                continue
            found[labels[LABEL_WORKSPACE_ID]] = RuntimeStatus(
                state=summary.get("State") or "unknown",
                container_id=summary.get("Id"),
                image_id=summary.get("ImageID"),
                ports=summary_ports(summary.get("Ports")),
            )
        return found

    @_engine_errors
    def exec(
        self, workspace_id: str, argv: Sequence[str], user: str = "dev8", workdir: str | None = None
    ) -> ExecResult:
        container = self._require(workspace_id)
        if container.status != "running":
            raise Conflict(f"workspace {workspace_id} is not running")
        result = container.exec_run(
            list(argv), user=user, workdir=workdir, environment=_user_env(user)
        )
        return ExecResult(result.exit_code, result.output)

    @_engine_errors
    def logs(
        self, workspace_id: str, follow: bool = False, tail: int | None = None
    ) -> Iterator[bytes]:
        container = self._require(workspace_id)
        kwargs: dict[str, Any] = {"stream": True, "follow": follow}
        if tail is not None:
            kwargs["tail"] = tail
        return container.logs(**kwargs)

    @_engine_errors
    def volumes(self, workspace_id: str | None = None) -> list[VolumeInfo]:
        label = LABEL_WORKSPACE_ID + (f"={workspace_id}" if workspace_id else "")
        found = self.client.volumes.list(filters={"label": label})
        return sorted(
            (
                VolumeInfo(
                    name=v.name,
                    role=(v.attrs.get("Labels") or {}).get(LABEL_ROLE, "?"),
                    workspace_id=(v.attrs.get("Labels") or {}).get(LABEL_WORKSPACE_ID, ""),
                    mountpoint=v.attrs.get("Mountpoint"),
                    created_at=v.attrs.get("CreatedAt"),
                )
                for v in found
            ),
            key=lambda v: v.name,
        )


def _user_env(user: str) -> dict[str, str]:
    home = "/root" if user == "root" else f"/home/{user}"
    return {"HOME": home, "USER": user, "LOGNAME": user}
