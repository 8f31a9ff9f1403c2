"""The operation queue, events and column ownership on a real SQLite file; locks that die
with their holder (a real second process)."""

import subprocess
import sys
import time
from datetime import timedelta

import pytest

from dev8.core.errors import Conflict
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import PENDING, RUNNING, Workspace
from dev8.store.store import Store, new_operation, utcnow


def make(name="demo", owner="alice") -> Workspace:
    return Workspace(
        id=name + "-id",
        name=name,
        owner=owner,
        image_ref="img",
        image_id="sha256:1",
        resources=Resources(2, 4096),
        secrets={"DEV8_AGENT_TOKEN": "t"},
    )


@pytest.fixture
def store(tmp_path) -> Store:
    return Store.open_sqlite(tmp_path / "dev8.db")


def test_queued_operations_run_in_order_and_are_claimed_once(store):
    workspace = make()
    first, second = (new_operation(workspace, a, "alice", offset=n) for n, a in enumerate("ab"))
    store.add(workspace, [first, second])
    assert store.workspaces_with_work() == [workspace.id]
    assert store.next_operation(workspace.id).id == first.id
    claimed = store.claim(first)
    assert (claimed.result, claimed.attempts) == (RUNNING, 1)
    store.finish_operation(first.id, "succeeded")
    assert store.claim(first) is None  # finished meanwhile: nobody runs it again
    assert store.next_operation(workspace.id).id == second.id
    assert store.fail_pending(workspace.id, "not run") == 1
    assert store.workspaces_with_work() == [] and store.count_unfinished() == 0


def test_queueing_records_the_desired_state_atomically(store):
    workspace = store.add(make())
    store.queue(workspace, [new_operation(workspace, "start", "alice")], DesiredState.RUNNING)
    assert store.get(workspace.id).desired_state is DesiredState.RUNNING
    assert store.operations(workspace.id)[0].result == PENDING


def test_events_page_by_sequence(store):
    workspace = store.add(make())
    operation = store.start_operation(workspace, "start", "alice")
    for message in ("one", "two", "three"):
        store.add_event(operation.id, message)
    events = store.events(operation.id)
    assert [e.message for e in events] == ["one", "two", "three"]
    assert [e.message for e in store.events(operation.id, after=events[0].seq)] == ["two", "three"]


def test_a_status_write_never_puts_back_stale_settings_or_activity(store):
    stale = store.add(make())
    store.update_settings(stale.id, resources=Resources(4, 8192), idle_timeout_s=60)
    store.touch_activity(stale.id, utcnow())
    store.set_desired(store.get(stale.id), DesiredState.RUNNING)
    stale.observed_state, stale.status_message = ObservedState.STARTING, "booting"
    store.save_status(stale)  # an operation's old copy of the workspace
    now = store.get(stale.id)
    assert now.observed_state is ObservedState.STARTING and now.status_message == "booting"
    assert now.resources == Resources(4, 8192) and now.idle_timeout_s == 60
    assert now.last_activity_at is not None and now.desired_state is DesiredState.RUNNING


def test_activity_only_moves_forward(store):
    workspace = store.add(make())
    later = utcnow()
    store.touch_activity(workspace.id, later)
    store.touch_activity(workspace.id, later - timedelta(minutes=5))
    assert store.get(workspace.id).last_activity_at == later


def test_purged_workspaces_keep_their_operations(store):
    workspace = store.add(make())
    operation = store.start_operation(workspace, "purge", "alice")
    store.finish_operation(operation.id, "succeeded", outcome={"destroyed_volumes": ["v"]})
    store.delete(workspace.id)
    kept = store.get_operation(operation.id)
    assert kept.workspace_id is None and kept.workspace_name == "demo" and kept.owner == "alice"
    assert kept.outcome == {"destroyed_volumes": ["v"]}


def test_a_lock_dies_with_the_process_that_held_it(store, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from dev8.store.locks import FileLocks\n"
            f"with FileLocks(Path({str(tmp_path / 'locks')!r})).hold('w1'):\n"
            "    print('held', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Conflict), store.lock("w1", wait=False):
            pass
    finally:
        holder.kill()  # SIGKILL: no cleanup runs
        holder.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            with store.lock("w1", wait=False):
                break
        except Conflict:
            assert time.monotonic() < deadline
            time.sleep(0.05)
