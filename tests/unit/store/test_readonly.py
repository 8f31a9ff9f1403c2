"""The read-only view of local mode's database (``dev8.store.readonly``) against the
``Store`` on the same SQLite file: the same records, and ``WriteNeeded`` instead of any
work it cannot do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import JSON
from tests.unit.store.test_store import make

from dev8.core.states import DesiredState, ObservedState
from dev8.store.models import UTCDateTime, WorkspaceRow
from dev8.store.readonly import JSON_COLUMNS, TIME_COLUMNS, ReadOnlyStore, WriteNeeded
from dev8.store.store import Store


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "dev8.db"


def test_it_decodes_exactly_the_json_and_time_columns_of_the_table():
    columns = WorkspaceRow.__table__.columns
    assert {c.name for c in columns if isinstance(c.type, JSON)} == JSON_COLUMNS
    assert {c.name for c in columns if isinstance(c.type, UTCDateTime)} == TIME_COLUMNS


def test_it_reads_what_the_store_reads(path: Path):
    store = Store.open_sqlite(path)
    store.add(make("web", secrets={"GITHUB_TOKEN": "x"}, env={"A": "1"}, quotas={"home": 5}))
    running = store.add(make("api", ports={"ssh": 2222}, agent_url="http://127.0.0.1:1"))
    running.observed_state = ObservedState.RUNNING
    store.save_status(running)
    store.add(make("other", owner="bob"))
    removed = store.add(make("old"))
    removed.desired_state = DesiredState.REMOVED
    store.save(removed)

    view = ReadOnlyStore(path)

    assert view.list("alice") == store.list("alice")
    assert [ws.name for ws in view.list("alice")] == ["api", "web"]
    assert view.find("alice", "old") == store.find("alice", "old")  # removed ones too
    assert view.find("alice", "web") == store.find("alice", "web")
    assert view.find("alice", "nosuch") is None


def test_a_missing_or_outdated_database_is_left_to_the_store(path: Path):
    with pytest.raises(WriteNeeded):
        ReadOnlyStore(path)
    assert not path.exists()  # nothing created
    Store.open_sqlite(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '0001'")
    with pytest.raises(WriteNeeded):
        ReadOnlyStore(path)


def test_it_never_writes(path: Path):
    store = Store.open_sqlite(path)
    workspace = store.add(make())
    workspace.observed_state = ObservedState.RUNNING
    with pytest.raises(WriteNeeded):
        ReadOnlyStore(path).save_status(workspace)
    with pytest.raises(WriteNeeded):
        ReadOnlyStore(path).add_event("op", "state stopped -> running")
    assert store.find("alice", "demo").observed_state is ObservedState.CREATING
