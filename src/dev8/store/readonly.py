"""A read-only view of local mode's SQLite database through the standard library's
``sqlite3``: what `dev8 ls` and `dev8 status` read, without importing SQLAlchemy (about
half of their start-up).

It answers only for a database whose schema is current, and never writes: a database to
create or migrate, or a change to record, raises ``WriteNeeded``, and the caller runs the
same command again on the full ``Store``. Rows become records through the store's own
``to_workspace``; the columns to decode are those of ``models.WorkspaceRow`` (a test
checks the two agree).
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dev8.core.states import DesiredState
from dev8.core.workspace import Workspace
from dev8.store.records import to_workspace
from dev8.store.schema import SCHEMA_HEAD

JSON_COLUMNS = frozenset({"env", "secrets", "ports", "host_ports", "fixed_ports", "quotas"})
TIME_COLUMNS = frozenset({"last_activity_at", "created_at", "updated_at"})
_COLUMNS = "SELECT * FROM workspaces"


class WriteNeeded(Exception):
    """The read-only view cannot answer: the database needs creating or migrating, or
    what was observed differs from what is recorded. The full store does the work."""


class ReadOnlyStore:
    """The reads of ``Store`` that observing workspaces needs, from ``path``."""

    def __init__(self, path: Path) -> None:
        try:
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            revision = self._db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error as exc:  # no database yet, or no schema in it
            raise WriteNeeded(str(exc)) from exc
        if revision != (SCHEMA_HEAD,):
            raise WriteNeeded(f"schema {revision} is not {SCHEMA_HEAD}")
        self._db.row_factory = sqlite3.Row

    def list(self, owner: str) -> builtins.list[Workspace]:
        """Like ``Store.list(owner)``: the owner's live workspaces, ordered by name."""
        rows = self._db.execute(
            f"{_COLUMNS} WHERE owner = ? AND desired_state != ? ORDER BY owner, name",
            (owner, DesiredState.REMOVED.value),
        )
        return [_workspace(row) for row in rows]

    def find(self, owner: str, name: str) -> Workspace | None:
        """Like ``Store.find``: the workspace ``name`` of ``owner``, a removed one included."""
        row = self._db.execute(f"{_COLUMNS} WHERE owner = ? AND name = ?", (owner, name)).fetchone()
        return _workspace(row) if row else None

    def save_status(self, workspace: Workspace) -> Workspace:
        raise WriteNeeded(f"the state of workspace {workspace.name} changed")

    def add_event(self, operation_id: str, message: str) -> None:
        raise WriteNeeded(f"an event of operation {operation_id}: {message}")


def _workspace(row: sqlite3.Row) -> Workspace:
    values = {key: _decoded(key, value) for key, value in dict(row).items()}
    return to_workspace(SimpleNamespace(**values), box=None)


def _decoded(column: str, value: Any) -> Any:
    """A column as SQLAlchemy's types return it: JSON parsed, times as aware UTC."""
    if value is None:
        return None
    if column in JSON_COLUMNS:
        return json.loads(value)
    if column in TIME_COLUMNS:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    return value
