"""Commands run in a workspace's running container (``docker exec``), bounded in time and
output: a member is root in their workspace and chooses both how long a command takes and
what it prints (the package recorder runs during every rebuild, in the server's process).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping, Sequence

from docker.api.client import APIClient

from dev8.core.errors import ProviderError
from dev8.providers.base import ExecResult
from dev8.providers.docker.streams import Demuxer, raw_socket

EXEC_TIMEOUT_S = 300.0
EXEC_OUTPUT_MAX = 16 * 1024 * 1024
_CHUNK = 1 << 16
_POLL_S = 0.05


class _Output:
    """stdout and stderr together (as ``exec_run`` gives them), up to ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.overflow = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        self.data += chunk[: max(room, 0)]
        self.overflow = self.overflow or len(chunk) > room


def run_exec(
    api: APIClient,
    container_id: str,
    argv: Sequence[str],
    *,
    user: str,
    workdir: str | None,
    environment: Mapping[str, str],
    timeout: float = EXEC_TIMEOUT_S,
    max_output: int = EXEC_OUTPUT_MAX,
) -> ExecResult:
    """Run ``argv`` and wait; ``ProviderError`` when it runs past ``timeout`` seconds or
    prints more than ``max_output`` bytes (the command is left to the workspace: the engine
    cannot stop an exec, and the workspace's pids limit bounds what it holds)."""
    exec_id = api.exec_create(
        container_id, list(argv), user=user, workdir=workdir, environment=dict(environment)
    )["Id"]
    deadline = time.monotonic() + timeout
    output = _Output(max_output)
    sock = raw_socket(api.exec_start(exec_id, socket=True))
    try:
        _read_until_closed(sock, output, deadline, argv[0])
    finally:
        sock.close()
    return ExecResult(_exit_code(api, exec_id, deadline, argv[0]), bytes(output.data))


def _read_until_closed(sock: socket.socket, output: _Output, deadline: float, command: str) -> None:
    demuxer = Demuxer(output.add, output.add)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    while True:
        sock.settimeout(_left(deadline, command))
        try:
            received = sock.recv_into(buffer)
        except TimeoutError:
            raise _late(command) from None
        if not received:
            return
        demuxer.feed(view[:received])
        if output.overflow:
            raise ProviderError(
                f"{command} in the workspace printed more than {output.limit} bytes; stopped "
                "reading it"
            )


def _exit_code(api: APIClient, exec_id: str, deadline: float, command: str) -> int:
    """The exit code, once the engine has it (it can lag the end of the output)."""
    waited = threading.Event()
    while True:
        found = api.exec_inspect(exec_id)
        if not found.get("Running") and found.get("ExitCode") is not None:
            return int(found["ExitCode"])
        waited.wait(min(_POLL_S, _left(deadline, command)))


def _left(deadline: float, command: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _late(command)
    return left


def _late(command: str) -> ProviderError:
    return ProviderError(f"{command} in the workspace did not finish in time; stopped waiting")
