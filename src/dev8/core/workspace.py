"""The workspace and operation records every layer passes around. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState


@dataclass
class Workspace:
    id: str
    name: str
    owner: str
    image_ref: str  # what the user asked for, e.g. dev8/workspace:latest
    image_id: str  # what it resolved to (sha256:...), so a moved tag is never used silently
    resources: Resources
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    desired_state: DesiredState = DesiredState.STOPPED
    observed_state: ObservedState = ObservedState.CREATING
    status_message: str = ""
    container_id: str | None = None
    ports: dict[str, int] = field(default_factory=dict)  # published now (empty when stopped)
    host_ports: dict[str, int] = field(default_factory=dict)  # pinned for every container
    fixed_ports: dict[str, int] = field(default_factory=dict)  # the ones the user asked for
    quotas: dict[str, int] = field(default_factory=dict)  # volume role -> bytes (unset: default)
    idle_timeout_s: int | None = None  # None: the server's default; 0: never stop when idle
    last_activity_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def ide_url(self) -> str | None:
        port = self.ports.get("ide")
        return f"http://127.0.0.1:{port}/" if port else None

    @property
    def agent_url(self) -> str | None:
        port = self.ports.get("agent")
        return f"http://127.0.0.1:{port}" if port else None


@dataclass
class Operation:
    id: str
    workspace_id: str
    action: str
    actor: str
    started_at: datetime
    result: str = "running"  # running | succeeded | failed
    message: str = ""
    finished_at: datetime | None = None

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
