"""The store on a real SQLite file."""

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from dev8.core.errors import AlreadyExists, Conflict, NotFound
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Workspace
from dev8.store.db import SCHEMA_HEAD
from dev8.store.store import Store


def make(name="demo", owner="alice", **kw) -> Workspace:
    return Workspace(
        id=kw.pop("id", name + "-id"),
        name=name,
        owner=owner,
        image_ref="img",
        image_id="sha256:1",
        resources=Resources(2, 4096),
        **kw,
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open_sqlite(tmp_path / "dev8.db")


def test_schema_head_constant_matches_the_migrations():
    config = Config()
    config.set_main_option("script_location", "dev8.store:migrations")
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_round_trip_and_uniqueness_per_owner(store):
    store.add(make(secrets={"GITHUB_TOKEN": "x"}, env={"A": "1"}))
    store.add(make(owner="bob", id="other"))
    found = store.find("alice", "demo")
    assert found.secrets == {"GITHUB_TOKEN": "x"} and found.env == {"A": "1"}
    assert found.created_at.tzinfo is not None
    with pytest.raises(AlreadyExists):
        store.add(make(id="third"))


def test_removed_workspaces_are_hidden_but_findable(store):
    ws = store.add(make())
    ws.desired_state, ws.observed_state = DesiredState.REMOVED, ObservedState.REMOVED
    store.save(ws)
    assert store.list("alice") == []
    assert store.find("alice", "demo").id == ws.id
    assert len(store.list("alice", include_removed=True)) == 1


def test_operations_are_recorded_and_deleted_with_the_workspace(store):
    ws = store.add(make())
    op = store.start_operation(ws, "start", "alice")
    store.finish_operation(op.id, "failed", "boom")
    [recorded] = store.operations(ws.id)
    assert (recorded.action, recorded.result, recorded.message) == ("start", "failed", "boom")
    assert recorded.duration_s is not None and recorded.duration_s >= 0
    store.delete(ws.id)
    assert store.operations(ws.id) == []
    with pytest.raises(NotFound):
        store.get(ws.id)


def test_reopening_is_cheap_and_keeps_data(tmp_path):
    Store.open_sqlite(tmp_path / "x.db").add(make())
    assert Store.open_sqlite(tmp_path / "x.db").find("alice", "demo") is not None
    assert oct((tmp_path / "x.db").stat().st_mode & 0o777) == "0o600"


def test_lock_refuses_a_second_holder_without_waiting(store):
    with store.lock("w1"), pytest.raises(Conflict), store.lock("w1", wait=False):
        pass
