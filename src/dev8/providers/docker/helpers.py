"""Helper containers on a workspace's volumes (the ``VolumeAccess`` capability): short-lived
jobs for backup, restore, du, clean and snapshots, and what they need to know of volumes and
mounts."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import docker
from docker.errors import DockerException
from docker.errors import NotFound as DockerNotFound
from docker.models.containers import Container

from dev8.core.errors import NotFound, ProviderError
from dev8.core.naming import HELPER_ROLE, LABEL_ROLE, LABEL_WORKSPACE_ID, container_name
from dev8.providers.base import HelperJob, HelperResult, MountInfo, VolumeInfo
from dev8.providers.docker.errors import engine_errors
from dev8.providers.docker.specs import LABEL_CLIENT, client_label, helper_container_spec
from dev8.providers.docker.streams import pump, raw_socket

STDERR_KEPT = 64 * 1024  # the end of stderr, for error messages
STDOUT_MAX = 64 * 1024 * 1024  # jobs print JSON reports; archives go through host paths
LINE_KEPT = 64 * 1024  # the start of each stderr line, for the job's callback


class DockerHelperJobs:
    """Mixed into ``DockerProvider``: everything here works through ``self.client``."""

    client: docker.DockerClient

    def image_id(self, reference: str) -> str:
        raise NotImplementedError

    def _attach_volume(self, info: VolumeInfo) -> None:
        raise NotImplementedError

    @engine_errors
    def run_helper(
        self, job: HelperJob, on_stderr: Callable[[str], None] | None = None
    ) -> HelperResult:
        self.image_id(job.image)
        for mount in job.mounts:
            if mount.volume:
                # Never let the engine make an unlabelled one; an enforced one needs its
                # loop device.
                self._attach_volume(self.inspect_volume(mount.volume))
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
        stdout, stderr = _CappedOutput(container), _LineSplitter(on_stderr)
        deadline = _Deadline(job.deadline_s, container)
        try:
            container.start()
            deadline.start()
            writer_error = pump(
                sock, stdout.feed, stderr.feed, None if job.stdin is None else [job.stdin]
            )
        finally:
            deadline.cancel()
            sock.close()
        stderr.flush()
        exit_code = container.wait()["StatusCode"]
        if deadline.expired.is_set():
            raise ProviderError(
                f"the {job.purpose} job did not finish within {job.deadline_s:.0f} s; stopped"
            )
        if stdout.overflowed:
            raise ProviderError(
                f"the {job.purpose} job printed more than {STDOUT_MAX // 2**20} MiB; stopped"
            )
        if writer_error is not None and exit_code != 0:
            raise ProviderError(
                f"could not give the {job.purpose} job its input: {writer_error}"
            ) from writer_error
        return HelperResult(exit_code, bytes(stdout.data), bytes(stderr.kept))

    @engine_errors
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
        return engine_is_local()

    @engine_errors
    def container_mounts(self, workspace_id: str) -> list[MountInfo]:
        try:
            container = self.client.containers.get(container_name(workspace_id))
        except DockerNotFound:
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

    @engine_errors
    def inspect_volume(self, name: str) -> VolumeInfo:
        try:
            return volume_info(self.client.volumes.get(name).attrs)
        except DockerNotFound as exc:
            raise NotFound(f"no volume named {name}") from exc


def engine_is_local() -> bool:
    """Whether the engine runs on this machine: a remote one (tcp://, ssh://) would mount
    its own machine's paths."""
    return os.environ.get("DOCKER_HOST", "unix://").startswith("unix://")


def volume_info(attrs: dict[str, Any]) -> VolumeInfo:
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


def _kill_quietly(container: Container) -> None:
    with suppress(DockerException):
        container.kill()


class _Deadline:
    """Kills the container at the deadline: that ends its stream, and the pump with it."""

    def __init__(self, seconds: float, container: Container) -> None:
        self.container = container
        self.expired = threading.Event()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.expired.set()
        _kill_quietly(self.container)

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()


class _CappedOutput:
    """The job's stdout up to ``STDOUT_MAX``; beyond it the container is killed."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.data = bytearray()
        self.overflowed = False

    def feed(self, data: bytes) -> None:
        if self.overflowed:
            return
        if len(self.data) + len(data) > STDOUT_MAX:
            self.overflowed = True
            _kill_quietly(self.container)
            return
        self.data += data


class _LineSplitter:
    """Hands complete stderr lines to a callback and keeps the last bytes for error messages.

    Linear in what the helper prints: each byte is looked at once, a line is cut to its
    first ``LINE_KEPT`` bytes as it arrives (the rest is dropped, never joined), and only the
    last ``STDERR_KEPT`` bytes are kept.
    """

    def __init__(self, on_line: Callable[[str], None] | None) -> None:
        self.on_line = on_line
        self.kept = bytearray()
        self._partial = bytearray()

    def feed(self, data: bytes) -> None:
        self.kept += data[-STDERR_KEPT:]
        del self.kept[:-STDERR_KEPT]
        if self.on_line is None:
            return
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._add(data[start:end])
            self.flush()
            start = end + 1
        self._add(data[start:])

    def _add(self, piece: bytes) -> None:
        room = LINE_KEPT - len(self._partial)
        if room > 0:
            self._partial += piece[:room]

    def flush(self) -> None:
        if self.on_line is not None and self._partial:
            self.on_line(self._partial.decode(errors="replace"))
        self._partial.clear()
