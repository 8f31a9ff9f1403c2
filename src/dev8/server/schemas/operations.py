"""Operations (what was done to a workspace, by whom, with what result) and their progress
events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from dev8.core.workspace import Operation
from dev8.server.schemas.base import Public


class EventPublic(Public):
    seq: int
    at: datetime
    message: str


class OperationPublic(BaseModel):
    id: str
    workspace_id: str | None
    workspace: str
    owner: str
    action: str
    actor: str
    result: str
    message: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    attempts: int
    outcome: dict[str, Any]

    @classmethod
    def of(cls, operation: Operation) -> OperationPublic:
        return cls(
            id=operation.id,
            workspace_id=operation.workspace_id,
            workspace=operation.workspace_name,
            owner=operation.owner,
            action=operation.action,
            actor=operation.actor,
            result=operation.result,
            message=operation.message,
            started_at=operation.started_at,
            finished_at=operation.finished_at,
            duration_s=operation.duration_s,
            attempts=operation.attempts,
            outcome=operation.outcome,
        )


class OperationDetail(OperationPublic):
    events: list[EventPublic]
