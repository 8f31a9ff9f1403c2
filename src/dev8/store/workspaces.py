"""The workspaces table, as ``dev8.core`` records.

Who writes which columns matters once a server runs operations in the background while
requests change settings: an operation writes the runtime columns (``save_status``), the
desired state has its own update (``set_desired``), and so do settings and activity, so
that no writer puts back a stale copy of what another one changed.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from dev8.core.clock import utcnow
from dev8.core.errors import AlreadyExists, NotFound
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Operation, Workspace
from dev8.store.models import WorkspaceRow
from dev8.store.records import fill_row, fill_status, operation_row, seal, to_workspace
from dev8.store.secretbox import is_sealed
from dev8.store.tables import Tables, changed

UNSET: Any = object()  # "leave it as it is", where None is a value to store
_NOT_LISTED = frozenset({"host_ports", "fixed_ports", "quotas"})
_LIVE = WorkspaceRow.desired_state != DesiredState.REMOVED.value


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class WorkspaceStore(Tables):
    # Reading ----------------------------------------------------------------------------
    def get(self, workspace_id: str) -> Workspace:
        with self._session() as session:
            row = session.get(WorkspaceRow, workspace_id)
            if row is None:
                raise NotFound(f"no workspace with id {workspace_id}")
            return to_workspace(row, self._box)

    def find(self, owner: str, name: str) -> Workspace | None:
        """The workspace ``name`` of ``owner``, including one that was removed."""
        query = select(WorkspaceRow).where(WorkspaceRow.owner == owner, WorkspaceRow.name == name)
        with self._session() as session:
            row = session.scalars(query).first()
            return to_workspace(row, self._box) if row else None

    def list(
        self, owner: str | None = None, include_removed: bool = False, with_secrets: bool = True
    ) -> builtins.list[Workspace]:
        query = select(WorkspaceRow.__table__).order_by(WorkspaceRow.owner, WorkspaceRow.name)
        if owner is not None:
            query = query.where(WorkspaceRow.owner == owner)
        if not include_removed:
            query = query.where(_LIVE)
        with self._session() as session:
            return [to_workspace(row, self._box, with_secrets) for row in session.execute(query)]

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
    ) -> builtins.list[Workspace]:
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
            query = query.where(_LIVE)
        if name_prefix:
            pattern = _escape_like(name_prefix) + "%"
            query = query.where(WorkspaceRow.name.like(pattern, escape="\\"))
        if after is not None:
            query = query.where(tuple_(WorkspaceRow.owner, WorkspaceRow.name) > tuple_(*after))
        with self.engine.connect() as connection:  # no ORM session: nothing to track
            rows = connection.execute(query).all()
        return [to_workspace(row, self._box, with_secrets=False) for row in rows]

    def count_by_state(self) -> dict[str, int]:
        query = (
            select(WorkspaceRow.observed_state, func.count())
            .where(_LIVE)
            .group_by(WorkspaceRow.observed_state)
        )
        with self._session() as session:
            return {state: count for state, count in session.execute(query)}

    def owns_any(self, owner: str) -> bool:
        query = select(WorkspaceRow.id).where(WorkspaceRow.owner == owner).limit(1)
        with self._session() as session:
            return session.scalars(query).first() is not None

    # Writing ----------------------------------------------------------------------------
    def add(self, workspace: Workspace, operations: Sequence[Operation] = ()) -> Workspace:
        """Insert ``workspace`` and, in the same transaction, ``operations`` on it."""
        now = utcnow()
        row = WorkspaceRow(id=workspace.id, created_at=now, updated_at=now)
        fill_row(row, workspace, self._box)
        try:
            with self._session() as session, session.begin():
                session.add(row)
                session.flush()
                session.add_all(operation_row(operation) for operation in operations)
        except IntegrityError as exc:
            raise AlreadyExists(
                f"workspace {workspace.name!r} already exists for {workspace.owner}"
            ) from exc
        workspace.created_at = workspace.updated_at = now
        return workspace

    def add_many(self, workspaces: Sequence[Workspace]) -> None:
        """Insert many workspaces in one transaction. No caller in dev8 itself: it fills
        databases for benchmarks (``benchmarks/api.py``) and tests, and suits an import."""
        now = utcnow()
        rows = []
        for workspace in workspaces:
            row = WorkspaceRow(id=workspace.id, created_at=now, updated_at=now)
            fill_row(row, workspace, self._box)
            rows.append(row)
        try:
            with self._session() as session, session.begin():
                session.add_all(rows)
        except IntegrityError as exc:
            raise AlreadyExists("one of the workspaces already exists") from exc

    def save(self, workspace: Workspace) -> Workspace:
        """Write every column (local mode's single writer; see ``save_status``)."""
        with self._session() as session, session.begin():
            row = session.get(WorkspaceRow, workspace.id)
            if row is None:
                raise NotFound(f"workspace {workspace.name!r} no longer exists")
            fill_row(row, workspace, self._box)
            row.updated_at = workspace.updated_at = utcnow()
        return workspace

    def save_status(self, workspace: Workspace) -> Workspace:
        """Write what operations and observation change: state, message, container, ports,
        image. Never settings, desired state or activity, which others may be changing."""
        with self._session() as session, session.begin():
            row = session.get(WorkspaceRow, workspace.id)
            if row is None:
                raise NotFound(f"workspace {workspace.name!r} no longer exists")
            fill_status(row, workspace)
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
            values["secrets"] = seal(self._box, secrets)
        if values:
            self._update(workspace_id, **values)

    def touch_activity(self, workspace_id: str, at: datetime) -> None:
        """Move the last activity forward to ``at`` (never back)."""
        never = WorkspaceRow.last_activity_at.is_(None)
        with self._session() as session, session.begin():
            session.execute(
                update(WorkspaceRow)
                .where(
                    WorkspaceRow.id == workspace_id,
                    or_(never, WorkspaceRow.last_activity_at < at),
                )
                .values(last_activity_at=at)
            )

    def _update(self, workspace_id: str, **values: Any) -> None:
        statement = (
            update(WorkspaceRow)
            .where(WorkspaceRow.id == workspace_id)
            .values(**values, updated_at=utcnow())
        )
        with self._session() as session, session.begin():
            if changed(session, statement) == 0:
                raise NotFound(f"no workspace with id {workspace_id}")

    def delete(self, workspace_id: str) -> None:
        with self._session() as session, session.begin():
            row = session.get(WorkspaceRow, workspace_id)
            if row is not None:
                session.delete(row)

    # Secrets at rest --------------------------------------------------------------------
    def check_secret_key(self) -> None:
        """Fail now, with the reason, if sealed secrets cannot be opened with this key."""
        with self._session() as session:
            for row in session.scalars(select(WorkspaceRow).limit(20)):
                to_workspace(row, self._box)

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
