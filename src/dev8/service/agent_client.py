"""Talking to a workspace's agent over its published port (the server polls; the agent
never calls back).

Plain ``http.client``: these are small GETs on loopback, and every CLI command that waits for
a workspace pays the import cost of a bigger client before it can do anything.

A member is root in their workspace and may replace the agent, so every answer is hostile
input: each request ends at one total deadline (connecting, sending, the status line, the
headers and the body together: a reply trickled a byte at a time cannot hold the caller),
reads at most a capped body, and ``/status`` is checked by ``dev8.core.agent_status``.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from dev8.core.agent_status import checked_status, health_reason
from dev8.core.errors import ProviderError

STATUS_LIMIT = 1024 * 1024  # bytes of a /status answer (the real one is a few KiB)
SMALL_LIMIT = 64 * 1024  # bytes of any other answer
_READ = 64 * 1024


class _Late(TimeoutError):
    """The request's deadline passed."""


class _DeadlineSocket:
    """A connected socket whose every send and receive waits only until one deadline: the
    timeout is recomputed before each call, so many slow reads cannot add up past it.
    ``http.client`` uses only ``sendall``, ``makefile`` and ``close`` of its socket."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline = sock, deadline

    def arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Late()
        self.sock.settimeout(left)

    def sendall(self, data: bytes) -> None:
        self.arm()
        self.sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        # The socket's own reader counts as a user of it: closing the connection while the
        # response is read (as http.client does) then waits for the reader to close too.
        return io.BufferedReader(_DeadlineReader(self, self.sock.makefile("rb", buffering=0)))

    def close(self) -> None:
        self.sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: _DeadlineSocket, raw: Any) -> None:
        self.owner, self.raw = owner, raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.owner.arm()
        return int(self.raw.readinto(buffer))

    def close(self) -> None:
        self.raw.close()
        super().close()


class AgentClient:
    def __init__(self, timeout: float = 3.0) -> None:
        self.timeout = timeout  # seconds for a whole request, from connecting to the last byte

    def _get(
        self,
        agent_url: str,
        path: str,
        token: str | None = None,
        put: bytes | None = None,
        limit: int = SMALL_LIMIT,
        method: str | None = None,
    ) -> tuple[int, bytes]:
        """GET ``path``, or PUT the body ``put`` there (or ``method`` it): the HTTP status and
        at most ``limit`` bytes of body (``ProviderError`` beyond). ``TimeoutError`` at the
        deadline."""
        parts = urlsplit(agent_url)
        if not parts.hostname:
            raise http.client.InvalidURL(f"no host in the agent address {agent_url!r}")
        deadline = time.monotonic() + self.timeout
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            connection.connect()
            connection.sock = _DeadlineSocket(connection.sock, deadline)
            verb = method or ("GET" if put is None else "PUT")
            connection.request(verb, path, body=put, headers=headers)
            response = connection.getresponse()
            return response.status, _read_at_most(response, limit, path)
        finally:
            connection.close()

    def _ask(
        self, agent_url: str, path: str, token: str | None = None, **how: Any
    ) -> tuple[int, bytes]:
        """``_get``, with every way of not answering as one ``ProviderError`` line."""
        try:
            return self._get(agent_url, path, token, **how)
        except TimeoutError as exc:
            raise ProviderError(
                f"the workspace agent did not answer within {self.timeout:g} s"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderError(f"the workspace agent is not answering: {_line(exc)}") from exc

    def health(self, agent_url: str | None) -> str | None:
        """None when the agent says healthy, else why not (including not answering)."""
        if not agent_url:
            return "the agent port is not published"
        try:
            status, body = self._ask(agent_url, "/health")
        except ProviderError:
            return "the agent is not answering yet"
        if status == 200:
            return None
        return health_reason(_parsed(body), status)

    def status(self, agent_url: str | None, token: str) -> dict[str, Any]:
        """What the agent reports, checked (``dev8.core.agent_status``); ``ProviderError``
        when it does not answer in time, answers too much or answers something else."""
        if not agent_url:
            raise ProviderError("the workspace is not running (no agent port)")
        status, body = self._ask(agent_url, "/status", token, limit=STATUS_LIMIT)
        if status != 200:
            raise ProviderError(f"the workspace agent answered HTTP {status} to /status")
        return checked_status(_parsed(body, "/status"))

    def put_ssh_keys(self, agent_url: str | None, token: str, keys: str) -> int:
        """Give the agent the owner's public keys (authorized_keys text); how many it took."""
        if not agent_url:
            raise ProviderError("the workspace is not running (no agent port)")
        status, body = self._ask(agent_url, "/ssh-keys", token, put=keys.encode())
        if status != 200:
            raise ProviderError(f"the workspace agent answered HTTP {status} to PUT /ssh-keys")
        taken = _parsed(body, "PUT /ssh-keys")
        count = taken.get("keys", 0) if isinstance(taken, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ProviderError("the workspace agent's answer to PUT /ssh-keys is malformed")
        return count

    def sync(self, agent_url: str | None, token: str) -> None:
        """Ask the agent to save the home and /workspace where they outlive the container
        (on ACI: its shares), answered when done; ``ProviderError`` if it did not."""
        if not agent_url:
            raise ProviderError("the workspace is not running (no agent port)")
        status, body = self._ask(agent_url, "/sync", token, method="POST")
        if status != 200:
            raise ProviderError(f"the workspace agent answered HTTP {status} to POST /sync")
        answer = _parsed(body, "POST /sync")
        trees = answer.get("trees") if isinstance(answer, dict) else None
        if not isinstance(trees, dict):
            raise ProviderError("the workspace agent's answer to POST /sync is malformed")
        failed = [
            f"{name}: {tree['last_error']}"
            for name, tree in trees.items()
            if isinstance(tree, dict) and tree.get("last_error")
        ]
        if failed:
            text = " ".join(f"the workspace agent's sync failed: {'; '.join(failed)}".split())
            raise ProviderError("".join(c for c in text if c.isprintable())[:200])


def _read_at_most(response: http.client.HTTPResponse, limit: int, path: str) -> bytes:
    """The body, read in pieces so that no more than ``limit`` + 1 bytes are ever held."""
    body = bytearray()
    while len(body) <= limit:
        piece = response.read(min(_READ, limit + 1 - len(body)))
        if not piece:
            return bytes(body)
        body += piece
    raise ProviderError(
        f"the workspace agent's answer to {path} is larger than {limit // 1024} KiB"
    )


def _parsed(body: bytes, what: str | None = None) -> Any:
    """``body`` as JSON (NaN and Infinity refused); None for a health answer that is not
    JSON, ``ProviderError`` for any other."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        if what is None:
            return None
        raise ProviderError(f"the workspace agent's answer to {what} is not JSON") from exc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _line(error: BaseException) -> str:
    """An exception's text as one short line (it may quote the agent)."""
    return " ".join(str(error).split())[:200]
