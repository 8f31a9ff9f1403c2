"""Ports a workspace shares beyond its owner (subdomain mode): a port without a row is
private."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from dev8.store.models import SharedPortRow
from dev8.store.tables import changed


class Sharing(str, Enum):
    """Who may open a port's URL, from the narrowest to the widest."""

    PRIVATE = "private"  # the owner only (the default)
    AUTHENTICATED = "authenticated"  # any signed-in user
    PUBLIC = "public"  # anyone, without signing in

    @property
    def rank(self) -> int:
        return list(Sharing).index(self)


@dataclass(frozen=True)
class SharedPort:
    workspace_id: str
    port: int
    sharing: Sharing
    updated_at: datetime


def _to_port(row: SharedPortRow) -> SharedPort:
    return SharedPort(row.workspace_id, row.port, Sharing(row.sharing), row.updated_at)


class SharedPortStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def list(self, workspace_id: str) -> builtins.list[SharedPort]:
        query = (
            select(SharedPortRow)
            .where(SharedPortRow.workspace_id == workspace_id)
            .order_by(SharedPortRow.port)
        )
        with self._sessions() as session:
            return [_to_port(row) for row in session.scalars(query)]

    def sharing(self, workspace_id: str, port: int) -> Sharing:
        with self._sessions() as session:
            row = session.get(SharedPortRow, (workspace_id, port))
            return Sharing(row.sharing) if row else Sharing.PRIVATE

    def share(self, workspace_id: str, port: int, sharing: Sharing, now: datetime) -> SharedPort:
        """Set a port's level; private removes its row (private is what no row means)."""
        if sharing is Sharing.PRIVATE:
            self.unshare(workspace_id, port)
            return SharedPort(workspace_id, port, sharing, now)
        with self._sessions() as session, session.begin():
            row = session.get(SharedPortRow, (workspace_id, port))
            if row is None:
                row = SharedPortRow(workspace_id=workspace_id, port=port)
                session.add(row)
            row.sharing, row.updated_at = sharing.value, now
        return SharedPort(workspace_id, port, sharing, now)

    def unshare(self, workspace_id: str, port: int) -> bool:
        """Back to private; whether the port was shared."""
        statement = delete(SharedPortRow).where(
            SharedPortRow.workspace_id == workspace_id, SharedPortRow.port == port
        )
        with self._sessions() as session, session.begin():
            return changed(session, statement) > 0
