"""Reading the local Docker engine over its unix socket with the standard library: the
workspace containers' states that `dev8 ls` and `dev8 status` show, without importing the
docker SDK (a fifth of their start-up).

``EngineReader`` is the observing part of ``DockerProvider`` (``ping``, ``status``,
``statuses``), asking the same requests; the answers become ``RuntimeStatus`` through the
same functions (``status``). It raises ``NotReadable`` where it cannot answer (an engine
that is not a local socket, or that does not answer): the caller then takes the docker
SDK's path, which reports the failure as it always has.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote

from dev8.core.naming import LABEL_WORKSPACE_ID, container_name
from dev8.core.states import ContainerState
from dev8.providers.base import ReaderUnavailable, RuntimeStatus
from dev8.providers.docker.status import inspected_status, workspace_statuses

DEFAULT_SOCKET = "/var/run/docker.sock"
TIMEOUT_S = 30.0
# The engine's list of workspace containers, as ``DockerProvider.statuses`` asks for it.
WORKSPACE_CONTAINERS = "/containers/json?all=1&filters=" + quote(
    json.dumps({"label": [LABEL_WORKSPACE_ID]})
)


class NotReadable(ReaderUnavailable):
    """The engine cannot be read over a local socket: the docker SDK's path takes over."""


def engine_socket() -> str:
    """The engine's unix socket, as ``DOCKER_HOST`` names it (the SDK's default without)."""
    host = os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
    if not host.startswith("unix://"):
        raise NotReadable(f"DOCKER_HOST={host} is not a local socket")
    return host.removeprefix("unix://")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=TIMEOUT_S)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class EngineReader:
    """Read-only requests to the engine at ``socket_path`` (default: ``engine_socket()``)."""

    def __init__(self, socket_path: str | None = None) -> None:
        self.socket_path = socket_path or engine_socket()

    def ping(self) -> None:
        self._get("/_ping")

    def status(self, workspace_id: str) -> RuntimeStatus:
        path = f"/containers/{container_name(workspace_id)}/json"
        body = self._get(path, missing_ok=True)
        if body is None:
            return RuntimeStatus(ContainerState.MISSING)
        attrs = _parsed(body, path)
        return inspected_status(attrs.get("Id"), attrs)

    def statuses(self) -> dict[str, RuntimeStatus]:
        return workspace_statuses(_parsed(self._get(WORKSPACE_CONTAINERS), "the container list"))

    def _get(self, path: str, missing_ok: bool = False) -> bytes | None:
        """The body of the answer to ``GET path`` (None for a 404 when ``missing_ok``)."""
        connection = _UnixConnection(self.socket_path)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        except OSError as exc:  # no socket, refused, timed out, reset
            raise NotReadable(f"the engine at {self.socket_path}: {exc}") from exc
        finally:
            connection.close()
        if response.status == 404 and missing_ok:
            return None
        if response.status != 200:
            raise NotReadable(f"the engine answered HTTP {response.status} to {path}")
        return body


def _parsed(body: bytes | None, what: str) -> Any:
    try:
        return json.loads(body or b"")
    except ValueError as exc:
        raise NotReadable(f"the engine's answer for {what} is not JSON") from exc
