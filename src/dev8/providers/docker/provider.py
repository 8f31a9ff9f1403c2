"""The Docker provider: a workspace is three labelled volumes and one container."""

from __future__ import annotations

import functools
import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    HELPER_ROLE,
    LABEL_ROLE,
    LABEL_WORKSPACE_ID,
    VOLUME_ROLES,
    container_name,
    volume_name,
)
from dev8.providers.base import (
    PORTS,
    ExecResult,
    HelperJob,
    HelperResult,
    MountInfo,
    RuntimeStatus,
    VolumeInfo,
    WorkspaceSpec,
)
from dev8.providers.docker.client import connect
from dev8.providers.docker.specs import (
    LABEL_CLIENT,
    client_label,
    container_spec,
    helper_container_spec,
    published_ports,
    summary_ports,
    volume_specs,
)
from dev8.providers.docker.streams import pump, raw_socket

STDERR_KEPT = 64 * 1024


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
        return sorted((_volume_info(v.attrs) for v in found), key=lambda v: v.name)

    # Helper containers (the VolumeAccess capability) -------------------------------------
    @_engine_errors
    def run_helper(
        self, job: HelperJob, on_stderr: Callable[[str], None] | None = None
    ) -> HelperResult:
        self.image_id(job.image)
        for mount in job.mounts:
            if mount.volume:
                self.inspect_volume(mount.volume)  # never let the engine make an unlabelled one
        spec = helper_container_spec(job, client_label(socket.gethostname(), os.getpid()))
        container = self.client.containers.create(**spec)
        try:
            return self._run_attached(container, job, on_stderr)
        finally:
            with suppress(DockerException):
                container.remove(force=True)

    def _run_attached(
        self, container: Container, job: HelperJob, on_stderr: Callable[[str], None] | None
    ) -> HelperResult:
        params = {"stdout": 1, "stderr": 1, "stream": 1, "stdin": int(job.stdin is not None)}
        sock = raw_socket(self.client.api.attach_socket(container.id, params=params))
        stdout, stderr = bytearray(), _LineSplitter(on_stderr)
        try:
            container.start()
            pump(sock, stdout.extend, stderr.feed, None if job.stdin is None else [job.stdin])
        finally:
            sock.close()
        stderr.flush()
        exit_code = container.wait()["StatusCode"]
        return HelperResult(exit_code, bytes(stdout), bytes(stderr.kept))

    @_engine_errors
    def remove_stale_helpers(self, workspace_id: str) -> list[str]:
        filters = {"label": [f"{LABEL_WORKSPACE_ID}={workspace_id}", f"{LABEL_ROLE}={HELPER_ROLE}"]}
        removed = []
        for container in self.client.containers.list(all=True, filters=filters):
            client = (container.labels or {}).get(LABEL_CLIENT, "")
            if _client_alive(client):
                continue
            with suppress(DockerNotFound):
                container.remove(force=True)
                removed.append(container.name)
        return removed

    def host_paths_visible(self) -> bool:
        # A remote engine (tcp://, ssh://) would mount its own machine's paths.
        return os.environ.get("DOCKER_HOST", "unix://").startswith("unix://")

    @_engine_errors
    def container_mounts(self, workspace_id: str) -> list[MountInfo]:
        container = self._container(workspace_id)
        if container is None:
            return []
        return [
            MountInfo(
                destination=m.get("Destination", ""),
                type=m.get("Type", ""),
                name=m.get("Name"),
                source=m.get("Source"),
                read_write=bool(m.get("RW", True)),
            )
            for m in container.attrs.get("Mounts") or []
        ]

    @_engine_errors
    def inspect_volume(self, name: str) -> VolumeInfo:
        try:
            return _volume_info(self.client.volumes.get(name).attrs)
        except DockerNotFound:
            raise NotFound(f"no volume named {name}") from None


def _volume_info(attrs: dict[str, Any]) -> VolumeInfo:
    volume_labels = attrs.get("Labels") or {}
    return VolumeInfo(
        name=attrs["Name"],
        role=volume_labels.get(LABEL_ROLE, "?"),
        workspace_id=volume_labels.get(LABEL_WORKSPACE_ID, ""),
        mountpoint=attrs.get("Mountpoint"),
        created_at=attrs.get("CreatedAt"),
        driver=attrs.get("Driver", "local"),
        labels=dict(volume_labels),
        options=dict(attrs.get("Options") or {}),
    )


def _client_alive(client: str) -> bool:
    """Whether the dev8 process named by a helper's client label still runs. A helper of
    another machine's dev8 (same engine, other host) is never touched."""
    hostname, _, pid = client.rpartition(":")
    if hostname != socket.gethostname():
        return bool(hostname)
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _LineSplitter:
    """Hands complete stderr lines to a callback and keeps the last bytes for error messages."""

    def __init__(self, on_line: Callable[[str], None] | None) -> None:
        self.on_line = on_line
        self.kept = bytearray()
        self._partial = b""

    def feed(self, data: bytes) -> None:
        self.kept.extend(data)
        del self.kept[:-STDERR_KEPT]
        if self.on_line is None:
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self.on_line(line.decode(errors="replace"))

    def flush(self) -> None:
        if self.on_line is not None and self._partial:
            self.on_line(self._partial.decode(errors="replace"))
        self._partial = b""


def _user_env(user: str) -> dict[str, str]:
    home = "/root" if user == "root" else f"/home/{user}"
    return {"HOME": home, "USER": user, "LOGNAME": user}
