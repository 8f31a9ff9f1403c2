"""Crash recovery against the real engine: a real `dev8 server` process is frozen in the
middle of an operation (SIGSTOP, so that the test can see the operation recorded as
running), killed with SIGKILL, and started again. The operation then completes, the
workspace ends in a stable state that matches the engine, and no container or volume is
left without its record. On SQLite and on PostgreSQL (where the locks are advisory locks
that die with the killed server's sessions)."""

from __future__ import annotations

import time

import pytest

from dev8.core.images import workspace_image
from dev8.core.naming import LABEL_OWNER, LABEL_WORKSPACE_ID
from dev8.core.workspace import RUNNING
from dev8.providers.base import PORTS
from dev8.store.secretbox import SecretBox
from dev8.store.store import Store
from tests.integration.helpers import Payload, forwarded, wait_healthy
from tests.integration.owned import OWNER, remove_owned
from tests.integration.server.process import ServerProcess

SSH_PORT = PORTS["ssh"]  # sshd inside the workspace, reached through the server


@pytest.fixture
def database(database_url):
    """SQLite or PostgreSQL (``tests.databases``)."""
    return database_url


@pytest.fixture
def server(tmp_path, database, client, workspace_image):
    process = ServerProcess(tmp_path, database).start()
    yield process
    process.stop()


def peek(server: ServerProcess, database: str) -> Store:
    """The server's database, read by the test while the server is frozen or dead."""
    box = SecretBox(server.env["DEV8_SECRET_KEY"])
    return Store.open(database, lock_dir=server.directory / "unused", secret_box=box)


def freeze_during(server, operation, until_event: str | None = None, timeout=120.0) -> bool:
    """Freeze the server as soon as ``operation`` runs (and has reported ``until_event``);
    False if it finished before it could be caught."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation.reload()
        if operation.result in ("succeeded", "failed"):
            return False
        seen = " | ".join(e["message"] for e in operation.attrs["events"])
        if operation.result == RUNNING and (until_event is None or until_event in seen):
            server.freeze()
            return True
        time.sleep(0.005)
    raise AssertionError(f"operation {operation.id} never ran")


def engine_objects(docker, owner: str) -> tuple[set[str], set[str]]:
    label = {"label": f"{LABEL_OWNER}={owner}"}
    containers = {
        c.labels[LABEL_WORKSPACE_ID] for c in docker.containers.list(all=True, filters=label)
    }
    volumes = {v.attrs["Labels"][LABEL_WORKSPACE_ID] for v in docker.volumes.list(filters=label)}
    return containers, volumes


def assert_nothing_orphaned(docker, owner: str, store: Store) -> None:
    records = {w.id for w in store.list(owner, include_removed=True)}
    containers, volumes = engine_objects(docker, owner)
    assert containers <= records and volumes <= records, (containers, volumes, records)


def settle(workspace, timeout=180.0):
    """Wait until nothing is queued or running for the workspace; its operations, newest
    first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = workspace.history()
        if all(op.finished for op in history):
            return history
        time.sleep(0.5)
    raise AssertionError(f"operations of {workspace.name} still unfinished after {timeout} s")


def test_killed_during_a_create(server, database, client, tmp_path):
    owner = f"{OWNER}-crash-create"
    try:
        me = server.user(owner)
        for attempt in range(5):
            change = me.workspaces.create(f"born-{attempt}", image=workspace_image())
            if freeze_during(server, change.operations[0]):
                break
            change.wait()
        else:
            pytest.fail("the create always finished before the server could be frozen")
        store = peek(server, database)
        left = store.get_operation(change.operations[0].id)
        assert (left.action, left.result) == ("create", RUNNING)
        server.kill()

        server.start()
        workspace = change.workspace
        history = settle(workspace)
        create, start = history[1].attrs, history[0].attrs
        assert (create["action"], create["result"]) == ("create", "succeeded")
        assert create["attempts"] == 2
        assert (start["action"], start["result"]) == ("start", "succeeded")
        workspace.reload()
        assert workspace.state == "running"
        wait_healthy(workspace.attrs["ports"]["agent"])
        containers, volumes = engine_objects(client, owner)
        assert workspace.id in containers and workspace.id in volumes
        mine = {"label": f"{LABEL_WORKSPACE_ID}={workspace.id}"}
        assert len(client.volumes.list(filters=mine)) == 3
        assert_nothing_orphaned(client, owner, store)
    finally:
        server.stop()  # first: a running server would bring back what it should run
        remove_owned(client, owner)


def test_killed_during_a_rebuild(server, database, client, ssh_key):
    owner = f"{OWNER}-crash-rebuild"
    try:
        me = server.user(owner, ssh_key.with_suffix(".pub").read_text())
        workspace = me.workspaces.create("phoenix", image=workspace_image()).wait()
        data = Payload("phoenix")
        with forwarded(workspace, SSH_PORT) as port:
            data.write(port, ssh_key)
        change = workspace.rebuild()
        # Frozen once the old container is being removed: the moment with the least left.
        assert freeze_during(server, change.operations[0], "removing the old container")
        store = peek(server, database)
        assert store.get_operation(change.operations[0].id).result == RUNNING
        server.kill()

        server.start()
        history = settle(workspace)
        rebuild = history[0].attrs
        assert (rebuild["action"], rebuild["result"], rebuild["attempts"]) == (
            "rebuild",
            "succeeded",
            2,
        )
        detail = me.operations.get(rebuild["id"]).attrs
        assert "resuming after an interruption (attempt 2)" in [
            e["message"] for e in detail["events"]
        ]
        workspace.reload()
        assert workspace.state == "running"
        wait_healthy(workspace.attrs["ports"]["agent"])
        with forwarded(workspace, SSH_PORT) as port:
            data.check(port, ssh_key)
        containers = client.containers.list(
            all=True, filters={"label": f"{LABEL_WORKSPACE_ID}={workspace.id}"}
        )
        assert len(containers) == 1 and containers[0].status == "running"
        assert_nothing_orphaned(client, owner, store)
    finally:
        server.stop()  # first: a running server would bring back what it should run
        remove_owned(client, owner)
