"""The audit log table: appended to by the server, read by admins."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dev8.core.audit import AuditEntry
from dev8.store.models import AuditRow


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, entry: AuditEntry) -> None:
        row = AuditRow(
            at=entry.at,
            actor=_storable(entry.actor, 255),
            user_id=entry.user_id,
            source=_storable(entry.source, 64),
            method=_storable(entry.method, 16),
            path=_storable(entry.path, 2048),
            status=entry.status,
            error=_storable(entry.error, 64),
            message=_storable(entry.message, 2000),
        )
        with self._sessions() as session, session.begin():
            session.add(row)

    def list(
        self, limit: int = 100, before: int | None = None, actor: str | None = None
    ) -> list[AuditEntry]:
        """Newest first; ``before`` is the ``seq`` to page back from."""
        query = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
        if before is not None:
            query = query.where(AuditRow.seq < before)
        if actor is not None:
            query = query.where(AuditRow.actor == actor)
        with self._sessions() as session:
            return [
                AuditEntry(
                    seq=row.seq,
                    at=row.at,
                    actor=row.actor,
                    user_id=row.user_id,
                    source=row.source,
                    method=row.method,
                    path=row.path,
                    status=row.status,
                    error=row.error,
                    message=row.message,
                )
                for row in session.scalars(query)
            ]


def _storable(text: str, limit: int) -> str:
    """What a request said, as a database keeps it: PostgreSQL refuses NUL characters in
    text, and a claimed user name or a path can carry one (``%00``)."""
    return text.replace("\x00", "\ufffd")[:limit]
