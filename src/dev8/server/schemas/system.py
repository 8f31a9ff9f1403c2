"""The audit log and health."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from dev8.server.schemas.base import Public


class AuditPublic(Public):
    seq: int
    at: datetime
    actor: str
    source: str
    method: str
    path: str
    status: int
    error: str
    message: str


class AuditPage(BaseModel):
    items: list[AuditPublic]
    next: int | None = Field(description="Pass as `before` for older entries; null at the end.")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
