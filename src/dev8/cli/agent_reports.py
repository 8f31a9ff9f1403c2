"""The agent client of the CLI's read-only looks (``context.looked``): each agent is asked
for its ``/status`` once, and its health is read from that report, so that `dev8 ls` asks
every agent one question instead of two (``/health`` while the workspaces are observed,
then ``/status`` for the table). The agent's report carries the same health check
``/health`` answers with; an agent whose token is not recorded, or that does not answer
``/status``, is asked ``/health`` as usual."""

from __future__ import annotations

import threading
from typing import Any

from dev8.core.errors import ProviderError
from dev8.service.agent_client import AgentClient


class OneReportPerAgent(AgentClient):
    def __init__(self, tokens: dict[str, str]) -> None:
        super().__init__()
        self.tokens = tokens  # agent address -> its token, as recorded
        self._reports: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def health(self, agent_url: str | None) -> str | None:
        token = self.tokens.get(agent_url or "")
        if agent_url and token:
            try:
                return self.status(agent_url, token).get("health")
            except ProviderError:
                pass
        return super().health(agent_url)

    def status(self, agent_url: str | None, token: str) -> dict[str, Any]:
        key = (agent_url or "", token)
        with self._lock:
            report = self._reports.get(key)
        if report is None:
            report = super().status(agent_url, token)
            with self._lock:
                self._reports[key] = report
        return report
