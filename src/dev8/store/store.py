"""The store: workspaces and their operation history, as ``dev8.core`` records."""

from __future__ import annotations

import contextlib
import fcntl
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dev8.core.errors import AlreadyExists, Conflict, NotFound
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Operation, Workspace
from dev8.store.db import migrate, open_engine, sqlite_url
from dev8.store.models import OperationRow, WorkspaceRow


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _to_workspace(row: WorkspaceRow) -> Workspace:
    return Workspace(
        id=row.id,
        name=row.name,
        owner=row.owner,
        image_ref=row.image_ref,
        image_id=row.image_id,
        resources=Resources(row.cpus, row.memory_mb),
        env=dict(row.env or {}),
        secrets=dict(row.secrets or {}),
        desired_state=DesiredState(row.desired_state),
        observed_state=ObservedState(row.observed_state),
        status_message=row.status_message,
        container_id=row.container_id,
        ports=dict(row.ports or {}),
        host_ports=dict(row.host_ports or {}),
        fixed_ports=dict(row.fixed_ports or {}),
        quotas=dict(row.quotas or {}),
        idle_timeout_s=row.idle_timeout_s,
        last_activity_at=row.last_activity_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _fill_row(row: WorkspaceRow, workspace: Workspace) -> None:
    row.name, row.owner = workspace.name, workspace.owner
    row.image_ref, row.image_id = workspace.image_ref, workspace.image_id
    row.cpus, row.memory_mb = workspace.resources.cpus, workspace.resources.memory_mb
    row.env, row.secrets = dict(workspace.env), dict(workspace.secrets)
    row.desired_state = workspace.desired_state.value
    row.observed_state = workspace.observed_state.value
    row.status_message = workspace.status_message
    row.container_id, row.ports = workspace.container_id, dict(workspace.ports)
    row.host_ports, row.fixed_ports = dict(workspace.host_ports), dict(workspace.fixed_ports)
    row.quotas, row.idle_timeout_s = dict(workspace.quotas), workspace.idle_timeout_s
    row.last_activity_at = workspace.last_activity_at


def _to_operation(row: OperationRow) -> Operation:
    return Operation(
        id=row.id,
        workspace_id=row.workspace_id,
        action=row.action,
        actor=row.actor,
        started_at=row.started_at,
        result=row.result,
        message=row.message,
        finished_at=row.finished_at,
    )


class Store:
    def __init__(self, engine: Engine, lock_dir: Path | None = None) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._lock_dir = lock_dir

    @classmethod
    def open_sqlite(cls, path: Path) -> Store:
        engine = open_engine(sqlite_url(path))
        migrate(engine)
        path.chmod(0o600)  # it holds workspace secrets
        return cls(engine, lock_dir=path.parent / "locks")

    def _session(self) -> Session:
        return self._sessions()

    # Workspaces -----------------------------------------------------------------------
    def get(self, workspace_id: str) -> Workspace:
        with self._session() as session:
            row = session.get(WorkspaceRow, workspace_id)
            if row is None:
                raise NotFound(f"no workspace with id {workspace_id}")
            return _to_workspace(row)

    def find(self, owner: str, name: str) -> Workspace | None:
        """The workspace ``name`` of ``owner``, including one that was removed."""
        with self._session() as session:
            row = session.scalars(
                select(WorkspaceRow).where(WorkspaceRow.owner == owner, WorkspaceRow.name == name)
            ).first()
            return _to_workspace(row) if row else None

    def list(self, owner: str | None = None, include_removed: bool = False) -> list[Workspace]:
        query = select(WorkspaceRow).order_by(WorkspaceRow.owner, WorkspaceRow.name)
        if owner is not None:
            query = query.where(WorkspaceRow.owner == owner)
        if not include_removed:
            query = query.where(WorkspaceRow.desired_state != DesiredState.REMOVED.value)
        with self._session() as session:
            return [_to_workspace(row) for row in session.scalars(query)]

    def add(self, workspace: Workspace) -> Workspace:
        now = utcnow()
        row = WorkspaceRow(id=workspace.id, created_at=now, updated_at=now)
        _fill_row(row, workspace)
        try:
            with self._session() as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise AlreadyExists(
                f"workspace {workspace.name!r} already exists for {workspace.owner}"
            ) from None
        workspace.created_at = workspace.updated_at = now
        return workspace

    def save(self, workspace: Workspace) -> Workspace:
        with self._session() as session, session.begin():
            row = session.get(WorkspaceRow, workspace.id)
            if row is None:
                raise NotFound(f"workspace {workspace.name!r} no longer exists")
            _fill_row(row, workspace)
            row.updated_at = workspace.updated_at = utcnow()
        return workspace

    def delete(self, workspace_id: str) -> None:
        with self._session() as session, session.begin():
            row = session.get(WorkspaceRow, workspace_id)
            if row is not None:
                session.delete(row)

    # Operations -----------------------------------------------------------------------
    def start_operation(self, workspace_id: str, action: str, actor: str) -> Operation:
        row = OperationRow(
            id=uuid.uuid4().hex,
            workspace_id=workspace_id,
            action=action,
            actor=actor,
            result="running",
            message="",
            started_at=utcnow(),
        )
        with self._session() as session, session.begin():
            session.add(row)
        return _to_operation(row)

    def finish_operation(self, operation_id: str, result: str, message: str = "") -> Operation:
        with self._session() as session, session.begin():
            row = session.get(OperationRow, operation_id)
            if row is None:
                raise NotFound(f"no operation {operation_id}")
            row.result, row.message, row.finished_at = result, message, utcnow()
            return _to_operation(row)

    def operations(self, workspace_id: str, limit: int = 50) -> list[Operation]:
        query = (
            select(OperationRow)
            .where(OperationRow.workspace_id == workspace_id)
            .order_by(OperationRow.started_at.desc())
            .limit(limit)
        )
        with self._session() as session:
            return [_to_operation(row) for row in session.scalars(query)]

    # Locking --------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, workspace_id: str, wait: bool = True) -> Iterator[None]:
        """Serialise mutating operations on one workspace across processes."""
        if self._lock_dir is None:
            yield
            return
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        with (self._lock_dir / f"{workspace_id}.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise Conflict(
                    "another dev8 command is changing this workspace; wait for it to finish"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
