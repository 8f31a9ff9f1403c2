"""The audit record of one mutating API request: who, from where, what, and the result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str  # the user's name, or what an anonymous caller claimed to be, or "anonymous"
    user_id: str | None
    source: str  # the client's address
    method: str
    path: str
    status: int
    error: str = ""  # the error code when the request failed
    message: str = ""
    seq: int = 0
