"""The operations table as a queue (queued, claimed, finished) with each operation's
progress events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update

from dev8.core.clock import utcnow
from dev8.core.errors import NotFound
from dev8.core.states import DesiredState
from dev8.core.workspace import (
    FAILED,
    PENDING,
    RUNNING,
    UNFINISHED,
    Operation,
    OperationEvent,
    Workspace,
)
from dev8.store.models import OperationEventRow, OperationRow, WorkspaceRow
from dev8.store.records import new_operation, operation_row, to_event, to_operation
from dev8.store.tables import Tables, changed


class OperationStore(Tables):
    # Recording what runs now ------------------------------------------------------------
    def start_operation(
        self,
        workspace: Workspace,
        action: str,
        actor: str,
        *,
        result: str = RUNNING,
        params: dict[str, Any] | None = None,
    ) -> Operation:
        """Record an operation: running (run now, by the caller) or pending (queued)."""
        operation = new_operation(workspace, action, actor, result=result, params=params)
        with self._session() as session, session.begin():
            session.add(operation_row(operation))
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
            return to_operation(row)

    # Reading ----------------------------------------------------------------------------
    def get_operation(self, operation_id: str) -> Operation:
        with self._session() as session:
            row = session.get(OperationRow, operation_id)
            if row is None:
                raise NotFound(f"no operation {operation_id}")
            return to_operation(row)

    def operations(self, workspace_id: str, limit: int = 50) -> list[Operation]:
        query = (
            select(OperationRow)
            .where(OperationRow.workspace_id == workspace_id)
            .order_by(OperationRow.started_at.desc(), OperationRow.id)
            .limit(limit)
        )
        with self._session() as session:
            return [to_operation(row) for row in session.scalars(query)]

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
            return to_operation(row) if row else None

    def count_unfinished(self) -> int:
        query = select(func.count()).select_from(OperationRow)
        with self._session() as session:
            return session.scalar(query.where(OperationRow.result.in_(UNFINISHED))) or 0

    # The queue --------------------------------------------------------------------------
    def queue(
        self,
        workspace: Workspace,
        operations: Sequence[Operation],
        desired: DesiredState | None = None,
    ) -> None:
        """Queue ``operations`` and record the desired state they lead to, atomically."""
        with self._session() as session, session.begin():
            if desired is not None:
                statement = (
                    update(WorkspaceRow)
                    .where(WorkspaceRow.id == workspace.id)
                    .values(desired_state=desired.value, updated_at=utcnow())
                )
                if changed(session, statement) == 0:
                    raise NotFound(f"workspace {workspace.name!r} no longer exists")
                workspace.desired_state = desired
            session.add_all(operation_row(operation) for operation in operations)

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
            return to_operation(row) if row else None

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
            rows = session.execute(query)
            return [workspace_id for workspace_id, _ in rows if workspace_id is not None]

    def claim(self, operation: Operation) -> Operation | None:
        """Mark ``operation`` running and count the attempt, unless it finished meanwhile.
        The caller holds the workspace's lock."""
        statement = (
            update(OperationRow)
            .where(OperationRow.id == operation.id, OperationRow.result.in_(UNFINISHED))
            .values(result=RUNNING, attempts=OperationRow.attempts + 1)
        )
        with self._session() as session, session.begin():
            if changed(session, statement) == 0:
                return None
        return self.get_operation(operation.id)

    def fail_pending(self, workspace_id: str, message: str) -> int:
        """Finish the workspace's queued operations as failed; returns how many."""
        statement = (
            update(OperationRow)
            .where(OperationRow.workspace_id == workspace_id, OperationRow.result == PENDING)
            .values(result=FAILED, message=message, finished_at=utcnow())
        )
        with self._session() as session, session.begin():
            return changed(session, statement)

    # Progress events --------------------------------------------------------------------
    def add_event(self, operation_id: str, message: str) -> OperationEvent:
        row = OperationEventRow(operation_id=operation_id, at=utcnow(), message=message)
        with self._session() as session, session.begin():
            session.add(row)
            session.flush()
            return to_event(row)

    def events(self, operation_id: str, after: int = 0, limit: int = 500) -> list[OperationEvent]:
        query = (
            select(OperationEventRow)
            .where(OperationEventRow.operation_id == operation_id, OperationEventRow.seq > after)
            .order_by(OperationEventRow.seq)
            .limit(limit)
        )
        with self._session() as session:
            return [to_event(row) for row in session.scalars(query)]
