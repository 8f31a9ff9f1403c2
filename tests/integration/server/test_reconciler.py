"""The reconciler: queued work, work left behind by a dead server, drift between desired
and observed state, and idle auto-stop.

The database, the HTTP server and the reconciler's threads are real; the provider and the
workspaces' agents are the fakes of ``tests.fakes``, which let a test lose a container,
refuse a call or set what an agent reports. (The same recovery against the real engine,
with a real server killed by SIGKILL, is in ``test_crash_recovery.py``.)
"""

from __future__ import annotations

import time
from datetime import datetime

from dev8.core.errors import ProviderError
from dev8.core.states import ObservedState
from dev8.core.workspace import RUNNING
from dev8.store.store import new_operation
from tests.integration.server.live import create, wait_for
from tests.integration.server.test_api import add_record

IDLE_TIMEOUT_S = 2


def running_workspace(api, client, name, **fields):
    accepted = create(client, name, **fields)
    assert [op["result"] for op in api.settle(client, accepted)] == ["succeeded"] * 2
    return api.context.store.find("admin", name)


def history(client, name):
    return client.get(f"/api/v1/workspaces/{name}/operations").json()


def leave_running(api, workspace, action, attempts):
    """What a server killed in the middle of ``action`` leaves behind: an operation marked
    running whose lock nobody holds."""
    operation = new_operation(workspace, action, "admin")
    operation.result, operation.attempts = RUNNING, attempts
    api.context.store.queue(workspace, [operation])
    api.context.wake()
    return operation


def test_an_operation_left_running_by_a_dead_server_is_resumed(api):
    admin = api.admin()
    workspace = running_workspace(api, admin, "resume")
    operation = leave_running(api, workspace, "restart", attempts=1)
    done = api.wait_operation(admin, operation.id)
    assert done["result"] == "succeeded" and done["attempts"] == 2
    events = [
        e["message"] for e in admin.get(f"/api/v1/operations/{operation.id}").json()["events"]
    ]
    assert events[0] == "resuming after an interruption (attempt 2)"
    assert admin.get("/api/v1/workspaces/resume").json()["state"] == "running"


def test_an_operation_interrupted_too_often_fails_instead_of_looping(api):
    admin = api.admin()
    workspace = running_workspace(api, admin, "giveup")
    api.provider.vanish(workspace.id)  # killed after removing the old container, again
    operation = leave_running(api, workspace, "rebuild", attempts=3)
    done = api.wait_operation(admin, operation.id)
    assert done["result"] == "failed" and done["message"].startswith("interrupted 3 times")
    api.watch.observed(passes=3)  # they keep the failure shown, and retry nothing
    seen = admin.get("/api/v1/workspaces/giveup").json()
    assert seen["state"] == "failed" and "interrupted 3 times" in seen["message"]
    assert history(admin, "giveup")[0]["id"] == operation.id


def test_an_operation_waits_while_another_process_holds_the_workspace(api):
    admin = api.admin()
    workspace = running_workspace(api, admin, "held")
    with api.context.store.lock(workspace.id):  # as another server process would
        stop = admin.post("/api/v1/workspaces/held/stop").json()["operations"][0]
        # The runner tries the workspace and backs off: nothing run, nothing claimed.
        assert api.watch.tried(workspace.id, times=2) == [None, None]
        operation = admin.get(f"/api/v1/operations/{stop['id']}").json()
        assert (operation["result"], operation["attempts"]) == ("pending", 0)
    assert api.wait_operation(admin, stop["id"])["result"] == "succeeded"


def test_two_servers_on_one_database_run_each_operation_once(make_api):
    first = make_api()
    key = first.context.settings.secret_key.get_secret_value()
    second = make_api(provider=first.provider, agent=first.agent, secret_key=key)
    admin = first.admin()
    queued = [create(admin, f"twin-{n}") for n in range(6)]
    for accepted in queued:
        assert [op["attempts"] for op in first.settle(admin, accepted)] == [1, 1]
    creates = [call for call in first.provider.calls if call[0] == "create"]
    assert len(creates) == 6 and len({workspace_id for _, workspace_id in creates}) == 6
    assert second.live.url != first.live.url


def test_a_vanished_container_is_brought_back(api):
    admin = api.admin()
    workspace = running_workspace(api, admin, "vanish")
    api.provider.vanish(workspace.id)
    wait_for(lambda: history(admin, "vanish")[0]["actor"] == "reconciler", message="a start")
    wait_for(lambda: history(admin, "vanish")[0]["result"] == "succeeded", message="success")
    assert history(admin, "vanish")[0]["action"] == "start"
    assert admin.get("/api/v1/workspaces/vanish").json()["state"] == "running"


def test_a_container_started_behind_its_back_is_stopped(api):
    admin = api.admin()
    workspace = running_workspace(api, admin, "sneaky")
    api.settle(admin, admin.post("/api/v1/workspaces/sneaky/stop").json())
    api.provider.start(workspace.id)
    wait_for(lambda: history(admin, "sneaky")[0]["actor"] == "reconciler", message="a stop")
    wait_for(lambda: api.provider.status(workspace.id).state == "exited", message="stopped")


def test_a_failure_is_shown_and_not_retried_in_a_loop(api):
    admin = api.admin()
    api.provider.fail("start", ProviderError("injected: cannot start"))
    accepted = create(admin, "broken")
    assert [op["result"] for op in api.settle(admin, accepted)] == ["succeeded", "failed"]
    api.watch.observed(passes=3)  # each would have queued a start, were failures retried
    assert len(history(admin, "broken")) == 2
    seen = admin.get("/api/v1/workspaces/broken").json()
    assert seen["state"] == "failed" and "injected: cannot start" in seen["message"]


def test_an_idle_workspace_is_stopped_and_activity_postpones_it(api):
    admin = api.admin()
    workspace = running_workspace(api, admin, "idle", idle_timeout_s=IDLE_TIMEOUT_S)
    never = running_workspace(api, admin, "never", idle_timeout_s=0)
    agent_url = workspace.agent_url
    # Someone is connected: the agent reports activity "now" whenever it is asked, so the
    # test's own timing cannot let the deadline pass.
    api.agent.connected.add(agent_url)
    connected_for = time.monotonic() + IDLE_TIMEOUT_S + 1
    wait_for(lambda: time.monotonic() > connected_for, message="a while connected")
    api.watch.observed(passes=2)
    assert admin.get("/api/v1/workspaces/idle").json()["state"] == "running"
    assert history(admin, "idle")[0]["action"] == "start"
    api.agent.connected.discard(agent_url)
    last_reported = api.agent.reported[agent_url]
    stop = wait_for(
        lambda: history(admin, "idle")[0]["actor"] == "idle-timeout" and history(admin, "idle")[0],
        message="an idle stop",
    )
    queued_at = datetime.fromisoformat(stop["started_at"]).timestamp()
    assert queued_at - last_reported >= IDLE_TIMEOUT_S  # the deadline ran from the last activity
    last = wait_for(
        lambda: history(admin, "idle")[0]["result"] == "succeeded" and history(admin, "idle")[0]
    )
    assert last["action"] == "stop" and last["message"].startswith("stopped after 2 s without")
    assert admin.get("/api/v1/workspaces/idle").json()["state"] == "stopped"
    assert admin.get("/api/v1/workspaces/never").json()["state"] == "running"
    assert api.provider.status(never.id).state == "running"


def test_a_stop_running_late_never_undoes_a_start_asked_for_after_it(api):
    """Stop, then start at once (the dashboard's buttons) while the runner has not taken the
    stop yet (the test holds the workspace's lock, as a busy runner would): when the stop
    runs, the desired state stays the last request's ("running"); both run in order and
    the workspace ends running. Before, each operation recorded its own target when it ran,
    so the older stop put "stopped" back."""
    admin = api.admin()
    workspace = running_workspace(api, admin, "quick")
    api.provider.delays["stop"] = 0.5
    with api.context.store.lock(workspace.id):
        stop = admin.post("/api/v1/workspaces/quick/stop")
        start = admin.post("/api/v1/workspaces/quick/start")
        assert (stop.status_code, start.status_code) == (202, 202), (stop.text, start.text)
    seen = set()
    while api.context.store.next_operation(workspace.id):
        seen.add(admin.get("/api/v1/workspaces/quick").json()["desired_state"])
    assert ("stop", workspace.id) in api.provider.calls
    assert seen <= {"running"}, seen
    api.settle(admin, start.json())
    assert admin.get("/api/v1/workspaces/quick").json()["state"] == "running"
    assert [op["action"] for op in history(admin, "quick")][:2] == ["start", "stop"]  # newest first


def test_a_workspace_recorded_after_the_engine_was_asked_waits_for_the_next_pass(api):
    """A pass lists the records before it asks the provider for every container's state, so
    a workspace recorded between the two is judged by the next pass, not by a snapshot taken
    before its container existed (which would call it missing and queue a start)."""
    added = []
    snapshot_of = api.provider.statuses

    def snapshot_then_a_new_workspace():
        snapshot = snapshot_of()
        if not added:
            added.append(add_record(api, "late", "admin", running=True))
        return snapshot

    api.provider.statuses = snapshot_then_a_new_workspace
    api.watch.observed(passes=3)
    assert added
    assert api.context.store.find("admin", "late").observed_state is ObservedState.RUNNING
    assert history(api.admin(), "late") == []
