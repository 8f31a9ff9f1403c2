"""The store: workspaces, their operations, users and the audit log, as ``dev8.core``
records, over SQLite (local mode) or PostgreSQL (a server).

``Store`` combines the parts, each in its own module: the workspaces table
(``WorkspaceStore``), the operation queue and its events (``OperationStore``), users and
tokens (``store.users``), their single sign-on identities (``store.identities``), the audit
log (``store.audit``), shared ports (``store.ports``) and per-workspace locks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

from dev8.core.clock import utcnow
from dev8.store.audit import AuditLog
from dev8.store.db import migrate, open_engine, sqlite_url
from dev8.store.identities import IdentityStore
from dev8.store.locks import AdvisoryLocks, FileLocks, Locks, NoLocks
from dev8.store.operations import OperationStore
from dev8.store.ports import SharedPortStore
from dev8.store.records import new_operation
from dev8.store.secretbox import SecretBox
from dev8.store.users import UserStore
from dev8.store.workspaces import UNSET, WorkspaceStore

__all__ = ["UNSET", "Store", "new_operation", "utcnow"]


class Store(WorkspaceStore, OperationStore):
    def __init__(
        self,
        engine: Engine,
        lock_dir: Path | None = None,
        secret_box: SecretBox | None = None,
    ) -> None:
        super().__init__(engine, secret_box)
        self.locks: Locks
        if engine.dialect.name == "postgresql":
            self.locks = AdvisoryLocks(engine)
        elif lock_dir is not None:
            self.locks = FileLocks(lock_dir)
        else:
            self.locks = NoLocks()
        self.users = UserStore(self._sessions)
        self.audit = AuditLog(self._sessions)
        self.ports = SharedPortStore(self._sessions)
        self.identities = IdentityStore(self._sessions)

    @classmethod
    def open_sqlite(cls, path: Path) -> Store:
        """Local mode's database file, migrated to the newest schema."""
        engine = open_engine(sqlite_url(path))
        migrate(engine)
        return cls(engine, lock_dir=path.parent / "locks")

    @classmethod
    def open(
        cls,
        url: str,
        lock_dir: Path,
        secret_box: SecretBox | None = None,
        pool_size: int | None = None,
    ) -> Store:
        """Any supported database, migrated to the newest schema (the server's way in)."""
        engine = open_engine(url, pool_size=pool_size)
        migrate(engine)
        return cls(engine, lock_dir=lock_dir, secret_box=secret_box)

    @contextlib.contextmanager
    def lock(self, workspace_id: str, wait: bool = True) -> Iterator[None]:
        """Serialise mutating operations on one workspace across processes."""
        with self.locks.hold(workspace_id, wait=wait):
            yield
