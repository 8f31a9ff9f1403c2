"""Talking to a workspace's agent over its published port (the server polls; the agent
never calls back)."""

from __future__ import annotations

from typing import Any

import httpx

from dev8.core.errors import ProviderError


class AgentClient:
    def __init__(self, timeout: float = 2.0) -> None:
        self._http = httpx.Client(timeout=timeout)

    def health(self, agent_url: str | None) -> str | None:
        """None when the agent says healthy, else why not (including not answering)."""
        if not agent_url:
            return "the agent port is not published"
        try:
            response = self._http.get(f"{agent_url}/health")
        except httpx.HTTPError:
            return "the agent is not answering yet"
        if response.status_code == 200:
            return None
        try:
            return str(response.json().get("reason", f"HTTP {response.status_code}"))
        except ValueError:
            return f"HTTP {response.status_code}"

    def _authorized_get(self, agent_url: str | None, path: str, token: str) -> dict[str, Any]:
        if not agent_url:
            raise ProviderError("the workspace is not running (no agent port)")
        try:
            response = self._http.get(f"{agent_url}{path}",
                                      headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise ProviderError(f"the workspace agent is not answering: {exc}") from exc
        if response.status_code != 200:
            raise ProviderError(f"the workspace agent answered {response.status_code} to {path}")
        return response.json()

    def status(self, agent_url: str | None, token: str) -> dict[str, Any]:
        return self._authorized_get(agent_url, "/status", token)

    def close(self) -> None:
        self._http.close()
