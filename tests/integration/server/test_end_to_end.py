"""End to end against the real engine and image, through a real `dev8 server` process: log
in, create and start a workspace through the API, SSH in with the OpenSSH client, and watch
the server stop it once it has been idle for its (short) timeout, an open SSH session
postponing the stop."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta

import pytest

from dev8.core.images import workspace_image
from dev8.providers.base import PORTS
from tests.integration.helpers import SSH_OPTIONS, forwarded, ssh
from tests.integration.owned import OWNER, remove_owned
from tests.integration.server.process import ServerProcess

IDLE_TIMEOUT_S = 12


@pytest.fixture
def server(tmp_path, client, workspace_image):
    process = ServerProcess(tmp_path).start()
    yield process
    process.stop()


def wait_state(workspace, states, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if workspace.reload().state in states:
            return workspace
        time.sleep(0.5)
    raise AssertionError(f"{workspace.name} is {workspace.state}, not {states}, after {timeout} s")


def last_activity(workspace) -> datetime:
    return datetime.fromisoformat(workspace.reload().attrs["last_activity_at"])


def wait_activity(workspace, later_than: datetime, timeout: float = 120.0) -> None:
    """Wait until the server records activity after ``later_than``; running all along."""
    deadline = time.monotonic() + timeout
    while last_activity(workspace) <= later_than:
        assert workspace.state == "running", "stopped while an SSH session was open"
        assert time.monotonic() < deadline, f"no activity recorded after {later_than}"
        time.sleep(0.5)


def test_idle_workspace_is_stopped_by_the_server_and_ssh_postpones_it(server, client, ssh_key):
    owner = f"{OWNER}-e2e"
    try:
        run(server, client, ssh_key, owner)
    finally:
        server.stop()  # first: a running server would bring back what it should run
        remove_owned(client, owner)


def run(server, docker, ssh_key, owner):
    me = server.user(owner, ssh_key.with_suffix(".pub").read_text())
    change = me.workspaces.create("idler", image=workspace_image(), idle_timeout_s=IDLE_TIMEOUT_S)
    workspace = change.wait()
    assert workspace.state == "running" and workspace.owner == owner
    with forwarded(workspace, PORTS["ssh"]) as port:
        assert ssh(port, ssh_key, "id -un").stdout.strip() == b"dev8"

        # An SSH session held open (relayed by the server, as every member's is) keeps the
        # workspace running: held until the server has learnt of activity later than the
        # moment it would otherwise have stopped it.
        argv = ["ssh", *SSH_OPTIONS, "-i", str(ssh_key), "-p", str(port), "dev8@127.0.0.1"]
        session = subprocess.Popen([*argv, "sleep 600"])
        try:
            opened = last_activity(workspace)
            wait_activity(workspace, opened + timedelta(seconds=IDLE_TIMEOUT_S + 2))
        finally:
            session.terminate()
            session.wait(30)

    wait_state(workspace, {"stopped"}, timeout=IDLE_TIMEOUT_S + 60)
    stop = workspace.history()[0].attrs
    # Judged by the server's own clock, not by when this test got to look: the stop was
    # queued a whole timeout after the last activity it knew of.
    idle_for = datetime.fromisoformat(stop["started_at"]) - last_activity(workspace)
    assert idle_for >= timedelta(seconds=IDLE_TIMEOUT_S), "stopped before its idle timeout"
    assert (stop["action"], stop["actor"], stop["result"]) == ("stop", "idle-timeout", "succeeded")
    assert stop["message"].startswith(f"stopped after {IDLE_TIMEOUT_S} s without activity")
    container = docker.containers.get(f"dev8-{workspace.id}")
    assert container.status == "exited"

    # The server is not fighting the user: a start is a start, and lasts.
    started = workspace.start().wait()
    assert started.state == "running"
    with forwarded(started, PORTS["ssh"]) as port:
        assert ssh(port, ssh_key, "echo back").stdout.strip() == b"back"
    workspace.remove(purge=True).wait()
