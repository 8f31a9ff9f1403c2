"""Talking to a workspace's agent over its published port (the server polls; the agent
never calls back).

Plain ``http.client``: these are small GETs on loopback, and every CLI command that waits for
a workspace pays the import cost of a bigger client before it can do anything.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from dev8.core.errors import ProviderError


class AgentClient:
    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = timeout

    def _get(
        self, agent_url: str, path: str, token: str | None = None, put: bytes | None = None
    ) -> tuple[int, bytes]:
        """GET ``path``, or PUT the body ``put`` there."""
        parts = urlsplit(agent_url)
        if not parts.hostname:
            raise http.client.InvalidURL(f"no host in the agent address {agent_url!r}")
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            connection.request("GET" if put is None else "PUT", path, body=put, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def health(self, agent_url: str | None) -> str | None:
        """None when the agent says healthy, else why not (including not answering)."""
        if not agent_url:
            return "the agent port is not published"
        try:
            status, body = self._get(agent_url, "/health")
        except (OSError, http.client.HTTPException):
            return "the agent is not answering yet"
        if status == 200:
            return None
        try:
            return str(json.loads(body).get("reason", f"HTTP {status}"))
        except ValueError:
            return f"HTTP {status}"

    def status(self, agent_url: str | None, token: str) -> dict[str, Any]:
        if not agent_url:
            raise ProviderError("the workspace is not running (no agent port)")
        try:
            status, body = self._get(agent_url, "/status", token)
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderError(f"the workspace agent is not answering: {exc}") from exc
        if status != 200:
            raise ProviderError(f"the workspace agent answered HTTP {status} to /status")
        return json.loads(body)

    def put_ssh_keys(self, agent_url: str | None, token: str, keys: str) -> int:
        """Give the agent the owner's public keys (authorized_keys text); how many it took."""
        if not agent_url:
            raise ProviderError("the workspace is not running (no agent port)")
        try:
            status, body = self._get(agent_url, "/ssh-keys", token, put=keys.encode())
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderError(f"the workspace agent is not answering: {exc}") from exc
        if status != 200:
            raise ProviderError(f"the workspace agent answered HTTP {status} to PUT /ssh-keys")
        return int(json.loads(body).get("keys", 0))
