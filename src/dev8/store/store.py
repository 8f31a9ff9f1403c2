"""The store: workspaces and their operation history, as ``dev8.core`` records.

Who writes which columns matters once a server runs operations in the background while
requests change settings: an operation writes the runtime columns (``save_status``), the
desired state has its own update (``set_desired``), and so do settings and activity, so
that no writer puts back a stale copy of what another one changed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dev8.core.errors import AlreadyExists, NotFound
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import PENDING, RUNNING, UNFINISHED, Operation, OperationEvent, Workspace
from dev8.store.audit import AuditLog
from dev8.store.db import migrate, open_engine, sqlite_url
from dev8.store.locks import AdvisoryLocks, FileLocks, Locks, NoLocks
from dev8.store.models import OperationEventRow, OperationRow, WorkspaceRow
from dev8.store.secretbox import SecretBox, is_sealed, open_without_key, secret_names
from dev8.store.users import UserStore

UNSET: Any = object()
_NOT_LISTED = frozenset({"host_ports", "fixed_ports", "quotas"})
_DESIRED = {state.value: state for state in DesiredState}
_OBSERVED = {state.value: state for state in ObservedState}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
        owner=row.owner,
        workspace_name=row.workspace_name,
        params=dict(row.params or {}),
        outcome=dict(row.outcome or {}),
        attempts=row.attempts,
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Store:
    def __init__(
        self,
        engine: Engine,
        lock_dir: Path | None = None,
        secret_box: SecretBox | None = None,
    ) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._box = secret_box
        self.locks: Locks
        if engine.dialect.name == "postgresql":
            self.locks = AdvisoryLocks(engine)
        elif lock_dir is not None:
            self.locks = FileLocks(lock_dir)
        else:
            self.locks = NoLocks()
        self.users = UserStore(self._sessions)
        self.audit = AuditLog(self._sessions)

    @classmethod
    def open_sqlite(cls, path: Path) -> Store:
        engine = open_engine(sqlite_url(path))
        migrate(engine)
        path.chmod(0o600)  # it holds workspace secrets
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
        if engine.dialect.name == "sqlite" and engine.url.database:
            Path(engine.url.database).chmod(0o600)
        return cls(engine, lock_dir=lock_dir, secret_box=secret_box)

    def _session(self) -> Session:
        return self._sessions()

    # Rows <-> records -------------------------------------------------------------------
    def _to_workspace(self, row: Any, with_secrets: bool = True) -> Workspace:
        """A record from an ORM row or a plain result row. Without ``with_secrets`` only the
        secrets' names are read (no decryption: what listings need)."""
        values = row._asdict() if hasattr(row, "_asdict") else row.__dict__
        stored = values["secrets"]
        if not with_secrets:
            secrets = dict.fromkeys(secret_names(stored), "")
        elif self._box:
            secrets = self._box.open(stored)
        else:
            secrets = open_without_key(stored)
        return Workspace(
            id=values["id"],
            name=values["name"],
            owner=values["owner"],
            image_ref=values["image_ref"],
            image_id=values["image_id"],
            resources=Resources(values["cpus"], values["memory_mb"]),
            env=dict(values["env"] or {}),
            secrets=secrets,
            desired_state=_DESIRED[values["desired_state"]],
            observed_state=_OBSERVED[values["observed_state"]],
            status_message=values["status_message"],
            container_id=values["container_id"],
            ports=dict(values["ports"] or {}),
            agent_url=values.get("agent_url"),
            host_ports=dict(values.get("host_ports") or {}),
            fixed_ports=dict(values.get("fixed_ports") or {}),
            quotas=dict(values.get("quotas") or {}),
            idle_timeout_s=values["idle_timeout_s"],
            last_activity_at=values["last_activity_at"],
            created_at=values["created_at"],
            updated_at=values["updated_at"],
            secrets_loaded=with_secrets,
        )

    def _sealed(self, secrets: dict[str, str]) -> dict[str, str]:
        return self._box.seal(secrets) if self._box else dict(secrets)

    def _fill_row(self, row: WorkspaceRow, workspace: Workspace) -> None:
        if not workspace.secrets_loaded:
            raise ValueError("a workspace read without its secrets cannot be written back")
        row.name, row.owner = workspace.name, workspace.owner
        row.cpus, row.memory_mb = workspace.resources.cpus, workspace.resources.memory_mb
        row.env, row.secrets = dict(workspace.env), self._sealed(workspace.secrets)
        row.desired_state = workspace.desired_state.value
        row.fixed_ports = dict(workspace.fixed_ports)
        row.quotas, row.idle_timeout_s = dict(workspace.quotas), workspace.idle_timeout_s
        row.last_activity_at = workspace.last_activity_at
        _fill_status(row, workspace)

    # Workspaces -----------------------------------------------------------------------
    def get(self, workspace_id: str) -> Workspace:
        with self._session() as session:
            row = session.get(WorkspaceRow, workspace_id)
            if row is None:
                raise NotFound(f"no workspace with id {workspace_id}")
            return self._to_workspace(row)

    def find(self, owner: str, name: str) -> Workspace | None:
        """The workspace ``name`` of ``owner``, including one that was removed."""
        with self._session() as session:
            row = session.scalars(
                select(WorkspaceRow).where(WorkspaceRow.owner == owner, WorkspaceRow.name == name)
            ).first()
            return self._to_workspace(row) if row else None

    def list(
        self, owner: str | None = None, include_removed: bool = False, with_secrets: bool = True
    ) -> list[Workspace]:
        query = select(WorkspaceRow.__table__).order_by(WorkspaceRow.owner, WorkspaceRow.name)
        if owner is not None:
            query = query.where(WorkspaceRow.owner == owner)
        if not include_removed:
            query = query.where(WorkspaceRow.desired_state != DesiredState.REMOVED.value)
        with self._session() as session:
            return [self._to_workspace(row, with_secrets) for row in session.execute(query)]

    def page(
        self,
        *,
        owner: str | None = None,
        states: Sequence[ObservedState] = (),
        desired: DesiredState | None = None,
        name_prefix: str | None = None,
        include_removed: bool = False,
        after: tuple[str, str] | None = None,
        limit: int = 50,
    ) -> list[Workspace]:
        """One page in (owner, name) order, starting after the (owner, name) ``after``.

        Read for showing, and several times cheaper than ``get``: plain rows, no secrets
        (their names only, no decryption) and no port pins or quotas (left empty)."""
        columns = [c for c in WorkspaceRow.__table__.c if c.name not in _NOT_LISTED]
        query = select(*columns).order_by(WorkspaceRow.owner, WorkspaceRow.name).limit(limit)
        if owner is not None:
            query = query.where(WorkspaceRow.owner == owner)
        if states:
            query = query.where(WorkspaceRow.observed_state.in_([s.value for s in states]))
        if desired is not None:
            query = query.where(WorkspaceRow.desired_state == desired.value)
        elif not include_removed:
            query = query.where(WorkspaceRow.desired_state != DesiredState.REMOVED.value)
        if name_prefix:
            pattern = _escape_like(name_prefix) + "%"
            query = query.where(WorkspaceRow.name.like(pattern, escape="\\"))
        if after is not None:
            query = query.where(tuple_(WorkspaceRow.owner, WorkspaceRow.name) > tuple_(*after))
        with self.engine.connect() as connection:  # no ORM session: nothing to track
            rows = connection.execute(query).all()
        return [self._to_workspace(row, with_secrets=False) for row in rows]

    def count_by_state(self) -> dict[str, int]:
        query = (
            select(WorkspaceRow.observed_state, func.count())
            .where(WorkspaceRow.desired_state != DesiredState.REMOVED.value)
            .group_by(WorkspaceRow.observed_state)
        )
        with self._session() as session:
            return {state: count for state, count in session.execute(query)}

    def owns_any(self, owner: str) -> bool:
        query = select(WorkspaceRow.id).where(WorkspaceRow.owner == owner).limit(1)
        with self._session() as session:
            return session.scalars(query).first() is not None

    def add(self, workspace: Workspace, operations: Sequence[Operation] = ()) -> Workspace:
        """Insert ``workspace`` and, in the same transaction, ``operations`` on it."""
        now = utcnow()
        row = WorkspaceRow(id=workspace.id, created_at=now, updated_at=now)
        self._fill_row(row, workspace)
        try:
            with self._session() as session, session.begin():
                session.add(row)
                session.flush()
                session.add_all(_operation_row(operation) for operation in operations)
        except IntegrityError:
            raise AlreadyExists(
                f"workspace {workspace.name!r} already exists for {workspace.owner}"
            ) from None
        workspace.created_at = workspace.updated_at = now
        return workspace

    def add_many(self, workspaces: Sequence[Workspace]) -> None:
        """Insert many workspaces in one transaction (imports, benchmarks)."""
        now = utcnow()
        rows = []
        for workspace in workspaces:
            row = WorkspaceRow(id=workspace.id, created_at=now, updated_at=now)
            self._fill_row(row, workspace)
            rows.append(row)
        try:
            with self._session() as session, session.begin():
                session.add_all(rows)
        except IntegrityError:
            raise AlreadyExists("one of the workspaces already exists") from None

    def save(self, workspace: Workspace) -> Workspace:
        """Write every column (local mode's single writer; see ``save_status``)."""
        with self._session() as session, session.begin():
            row = session.get(WorkspaceRow, workspace.id)
            if row is None:
                raise NotFound(f"workspace {workspace.name!r} no longer exists")
            self._fill_row(row, workspace)
            row.updated_at = workspace.updated_at = utcnow()
        return workspace

    def save_status(self, workspace: Workspace) -> Workspace:
        """Write what operations and observation change: state, message, container, ports,
        image. Never settings, desired state or activity, which others may be changing."""
        with self._session() as session, session.begin():
            row = session.get(WorkspaceRow, workspace.id)
            if row is None:
                raise NotFound(f"workspace {workspace.name!r} no longer exists")
            _fill_status(row, workspace)
            row.updated_at = workspace.updated_at = utcnow()
        return workspace

    def set_desired(self, workspace: Workspace, desired: DesiredState) -> None:
        workspace.desired_state = desired
        self._update(workspace.id, desired_state=desired.value)

    def update_settings(
        self,
        workspace_id: str,
        *,
        resources: Resources | None = None,
        idle_timeout_s: int | None = UNSET,
        secrets: dict[str, str] | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        if resources is not None:
            values.update(cpus=resources.cpus, memory_mb=resources.memory_mb)
        if idle_timeout_s is not UNSET:
            values["idle_timeout_s"] = idle_timeout_s
        if secrets is not None:
            values["secrets"] = self._sealed(secrets)
        if values:
            self._update(workspace_id, **values)

    def touch_activity(self, workspace_id: str, at: datetime) -> None:
        """Move the last activity forward to ``at`` (never back)."""
        with self._session() as session, session.begin():
            session.execute(
                update(WorkspaceRow)
                .where(
                    WorkspaceRow.id == workspace_id,
                    or_(
                        WorkspaceRow.last_activity_at.is_(None), WorkspaceRow.last_activity_at < at
                    ),
                )
                .values(last_activity_at=at)
            )

    def _update(self, workspace_id: str, **values: Any) -> None:
        with self._session() as session, session.begin():
            done = session.execute(
                update(WorkspaceRow)
                .where(WorkspaceRow.id == workspace_id)
                .values(**values, updated_at=utcnow())
            )
            if done.rowcount == 0:
                raise NotFound(f"no workspace with id {workspace_id}")

    def delete(self, workspace_id: str) -> None:
        with self._session() as session, session.begin():
            row = session.get(WorkspaceRow, workspace_id)
            if row is not None:
                session.delete(row)

    def check_secret_key(self) -> None:
        """Fail now, with the reason, if sealed secrets cannot be opened with this key."""
        with self._session() as session:
            for row in session.scalars(select(WorkspaceRow).limit(20)):
                self._to_workspace(row)

    def seal_plaintext_secrets(self) -> int:
        """Encrypt the secrets of rows written before the server had a key; returns how many."""
        if self._box is None:
            return 0
        sealed = 0
        with self._session() as session, session.begin():
            for row in session.scalars(select(WorkspaceRow)):
                if not is_sealed(row.secrets):
                    row.secrets = self._box.seal(dict(row.secrets or {}))
                    sealed += 1
        return sealed

    # Operations -----------------------------------------------------------------------
    def start_operation(
        self,
        workspace: Workspace | str,
        action: str,
        actor: str,
        *,
        result: str = RUNNING,
        params: dict[str, Any] | None = None,
    ) -> Operation:
        """Record an operation: running (run now, by the caller) or pending (queued)."""
        if isinstance(workspace, str):
            workspace = self.get(workspace)
        operation = new_operation(workspace, action, actor, result=result, params=params)
        with self._session() as session, session.begin():
            session.add(_operation_row(operation))
        return operation

    def finish_operation(
        self,
        operation_id: str,
        result: str,
        message: str = "",
        outcome: dict[str, Any] | None = None,
    ) -> Operation:
        with self._session() as session, session.begin():
            row = session.get(OperationRow, operation_id)
            if row is None:
                raise NotFound(f"no operation {operation_id}")
            row.result, row.message, row.finished_at = result, message, utcnow()
            if outcome is not None:
                row.outcome = outcome
            return _to_operation(row)

    def get_operation(self, operation_id: str) -> Operation:
        with self._session() as session:
            row = session.get(OperationRow, operation_id)
            if row is None:
                raise NotFound(f"no operation {operation_id}")
            return _to_operation(row)

    def operations(self, workspace_id: str, limit: int = 50) -> list[Operation]:
        query = (
            select(OperationRow)
            .where(OperationRow.workspace_id == workspace_id)
            .order_by(OperationRow.started_at.desc(), OperationRow.id)
            .limit(limit)
        )
        with self._session() as session:
            return [_to_operation(row) for row in session.scalars(query)]

    def next_operation(self, workspace_id: str) -> Operation | None:
        """The oldest operation on the workspace that has not finished."""
        query = (
            select(OperationRow)
            .where(OperationRow.workspace_id == workspace_id, OperationRow.result.in_(UNFINISHED))
            .order_by(OperationRow.started_at, OperationRow.id)
            .limit(1)
        )
        with self._session() as session:
            row = session.scalars(query).first()
            return _to_operation(row) if row else None

    def workspaces_with_work(self, limit: int = 100) -> list[str]:
        """Ids of workspaces with unfinished operations, the longest-waiting first."""
        query = (
            select(OperationRow.workspace_id, func.min(OperationRow.started_at))
            .where(OperationRow.result.in_(UNFINISHED), OperationRow.workspace_id.is_not(None))
            .group_by(OperationRow.workspace_id)
            .order_by(func.min(OperationRow.started_at))
            .limit(limit)
        )
        with self._session() as session:
            return [workspace_id for workspace_id, _ in session.execute(query)]

    def claim(self, operation: Operation) -> Operation | None:
        """Mark ``operation`` running and count the attempt, unless it finished meanwhile.
        The caller holds the workspace's lock."""
        with self._session() as session, session.begin():
            done = session.execute(
                update(OperationRow)
                .where(OperationRow.id == operation.id, OperationRow.result.in_(UNFINISHED))
                .values(result=RUNNING, attempts=OperationRow.attempts + 1)
            )
            if done.rowcount == 0:
                return None
        return self.get_operation(operation.id)

    def count_unfinished(self) -> int:
        query = select(func.count()).select_from(OperationRow)
        with self._session() as session:
            return session.scalar(query.where(OperationRow.result.in_(UNFINISHED))) or 0

    def queue(
        self,
        workspace: Workspace,
        operations: Sequence[Operation],
        desired: DesiredState | None = None,
    ) -> None:
        """Queue ``operations`` and record the desired state they lead to, atomically."""
        with self._session() as session, session.begin():
            if desired is not None:
                done = session.execute(
                    update(WorkspaceRow)
                    .where(WorkspaceRow.id == workspace.id)
                    .values(desired_state=desired.value, updated_at=utcnow())
                )
                if done.rowcount == 0:
                    raise NotFound(f"workspace {workspace.name!r} no longer exists")
                workspace.desired_state = desired
            session.add_all(_operation_row(operation) for operation in operations)

    def fail_pending(self, workspace_id: str, message: str) -> int:
        """Finish the workspace's queued operations as failed; returns how many."""
        with self._session() as session, session.begin():
            done = session.execute(
                update(OperationRow)
                .where(OperationRow.workspace_id == workspace_id, OperationRow.result == PENDING)
                .values(result="failed", message=message, finished_at=utcnow())
            )
            return done.rowcount

    def add_event(self, operation_id: str, message: str) -> OperationEvent:
        row = OperationEventRow(operation_id=operation_id, at=utcnow(), message=message)
        with self._session() as session, session.begin():
            session.add(row)
            session.flush()
            return OperationEvent(row.seq, row.operation_id, row.at, row.message)

    def events(self, operation_id: str, after: int = 0, limit: int = 500) -> list[OperationEvent]:
        query = (
            select(OperationEventRow)
            .where(OperationEventRow.operation_id == operation_id, OperationEventRow.seq > after)
            .order_by(OperationEventRow.seq)
            .limit(limit)
        )
        with self._session() as session:
            return [
                OperationEvent(row.seq, row.operation_id, row.at, row.message)
                for row in session.scalars(query)
            ]

    def last_finished(self, workspace_id: str) -> Operation | None:
        query = (
            select(OperationRow)
            .where(
                OperationRow.workspace_id == workspace_id,
                OperationRow.result.not_in(UNFINISHED),
            )
            .order_by(OperationRow.started_at.desc())
            .limit(1)
        )
        with self._session() as session:
            row = session.scalars(query).first()
            return _to_operation(row) if row else None

    # Locking --------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, workspace_id: str, wait: bool = True) -> Iterator[None]:
        """Serialise mutating operations on one workspace across processes."""
        with self.locks.hold(workspace_id, wait=wait):
            yield


def new_operation(
    workspace: Workspace,
    action: str,
    actor: str,
    *,
    result: str = PENDING,
    params: dict[str, Any] | None = None,
    offset: int = 0,
) -> Operation:
    """An operation record, not yet stored. ``offset`` (microseconds) orders several asked
    for in the same instant."""
    return Operation(
        id=uuid.uuid4().hex,
        workspace_id=workspace.id,
        action=action,
        actor=actor,
        started_at=utcnow() + timedelta(microseconds=offset),
        result=result,
        owner=workspace.owner,
        workspace_name=workspace.name,
        params=dict(params or {}),
    )


def _operation_row(operation: Operation) -> OperationRow:
    return OperationRow(
        id=operation.id,
        workspace_id=operation.workspace_id,
        action=operation.action,
        actor=operation.actor,
        result=operation.result,
        message=operation.message,
        started_at=operation.started_at,
        finished_at=operation.finished_at,
        owner=operation.owner,
        workspace_name=operation.workspace_name,
        params=dict(operation.params),
        outcome=dict(operation.outcome),
        attempts=operation.attempts,
    )


def _fill_status(row: WorkspaceRow, workspace: Workspace) -> None:
    row.image_ref, row.image_id = workspace.image_ref, workspace.image_id
    row.observed_state = workspace.observed_state.value
    row.status_message = workspace.status_message
    row.container_id, row.ports = workspace.container_id, dict(workspace.ports)
    row.host_ports = dict(workspace.host_ports)
    row.agent_url = workspace.agent_url
