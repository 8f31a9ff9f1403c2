"""What the parts of the store share: the engine, its sessions and the secret box."""

from __future__ import annotations

from sqlalchemy import CursorResult, Engine, Executable
from sqlalchemy.orm import Session, sessionmaker

from dev8.store.secretbox import SecretBox


class Tables:
    """The base of ``WorkspaceStore`` and ``OperationStore``, which ``Store`` combines."""

    def __init__(self, engine: Engine, secret_box: SecretBox | None = None) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._box = secret_box

    def _session(self) -> Session:
        return self._sessions()


def changed(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE; how many rows it changed."""
    result = session.execute(statement)
    assert isinstance(result, CursorResult)  # what SQLAlchemy returns for DML
    return result.rowcount
