"""Every row of the persistence contract (DESIGN.md), against the real engine and image.

Each test writes files to /home/dev8 and /workspace as dev8 over SSH, puts the workspace
through one event, and checks the files byte for byte afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dev8.core.errors import Dev8Error, ImageNotFound
from dev8.core.naming import LABEL_OWNER
from dev8.core.states import DesiredState, ObservedState
from dev8.providers.docker.engine import ensure_engine
from dev8.service.workspaces import CreateRequest, WorkspaceService
from tests.integration.helpers import Payload, host_key_fingerprints, ssh, wait_healthy
from tests.integration.owned import OWNER


def up(service: WorkspaceService, name: str, **kw):
    return service.up(CreateRequest(name=name, **kw))


def owned_objects(client) -> tuple[list, list]:
    label = {"label": f"{LABEL_OWNER}={OWNER}"}
    return client.containers.list(all=True, filters=label), client.volumes.list(filters=label)


def test_stop_and_start_keep_everything(service, ssh_key):
    ws = up(service, "stopstart")
    data = Payload("stopstart")
    data.write(ws.ports["ssh"], ssh_key)
    ssh(ws.ports["ssh"], ssh_key, "sleep 1000 >/dev/null 2>&1 &")  # a process that must end
    service.stop("stopstart")
    assert service.get("stopstart").observed_state is ObservedState.STOPPED
    ws = service.start("stopstart")
    assert service.get("stopstart").observed_state is ObservedState.RUNNING
    data.check(ws.ports["ssh"], ssh_key)
    assert ssh(ws.ports["ssh"], ssh_key, "pgrep -x sleep", check=False).returncode == 1


def test_ports_stay_the_same_across_stop_start(service):
    ws = up(service, "stableports")
    before = dict(ws.ports)
    service.stop("stableports")
    assert service.start("stableports").ports == before


def test_restart_keeps_everything(service, ssh_key):
    ws = up(service, "restart")
    data = Payload("restart")
    data.write(ws.ports["ssh"], ssh_key)
    ws = service.restart("restart")
    data.check(ws.ports["ssh"], ssh_key)
    assert [op.action for op in service.history("restart")][:2] == ["restart", "start"]


def test_crash_of_the_main_process_is_restarted_with_data(service, client, ssh_key):
    ws = up(service, "crash")
    data = Payload("crash")
    data.write(ws.ports["ssh"], ssh_key)
    container = client.containers.get(f"dev8-{ws.id}")
    # The agent is the main process under tini: SIGKILL it, and tini exits with it.
    container.exec_run(["sh", "-c", "kill -9 $(pgrep -f 'python -m dev8.agent')"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        container.reload()
        if container.attrs["RestartCount"] >= 1 and container.status == "running":
            break
        time.sleep(0.2)
    assert container.attrs["RestartCount"] >= 1, "the engine did not restart the crashed workspace"
    wait_healthy(ws.ports["agent"])
    assert service.get("crash").observed_state is ObservedState.RUNNING
    data.check(ws.ports["ssh"], ssh_key)


def _restart_engine() -> None:
    """Stop dockerd the way a host shutdown does (SIGTERM) and start it again."""
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "restart", "docker"], check=True)
        ensure_engine()
        return
    pid = int(Path("/var/run/docker.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists(), "dockerd did not stop"
    ensure_engine()


def test_engine_restart_brings_back_running_workspaces_only(service, ssh_key):
    running = up(service, "survivor")
    stopped = up(service, "sleeper")
    data = Payload("engine")
    data.write(running.ports["ssh"], ssh_key)
    data.write(stopped.ports["ssh"], ssh_key)
    service.stop("sleeper")

    _restart_engine()

    wait_healthy(running.ports["agent"], timeout=90)  # came back by itself, same ports
    assert service.get("survivor").observed_state is ObservedState.RUNNING
    assert service.get("sleeper").observed_state is ObservedState.STOPPED
    data.check(running.ports["ssh"], ssh_key)
    data.check(service.start("sleeper").ports["ssh"], ssh_key)


def test_rebuild_onto_a_new_image_keeps_data_and_host_key(
    service, client, ssh_key, workspace_image
):
    marker_image = _marker_image(client, workspace_image)
    ws = up(service, "rebuild")
    data = Payload("rebuild")
    data.write(ws.ports["ssh"], ssh_key)
    host_keys = host_key_fingerprints(ws.ports["ssh"])
    assert (
        ssh(ws.ports["ssh"], ssh_key, "test -e /etc/dev8-test-marker", check=False).returncode == 1
    )

    ws = service.rebuild("rebuild", image=marker_image)

    assert ws.image_id == client.images.get(marker_image).id
    assert ssh(ws.ports["ssh"], ssh_key, "cat /etc/dev8-test-marker").stdout == b"marker\n"
    data.check(ws.ports["ssh"], ssh_key)
    assert host_key_fingerprints(ws.ports["ssh"]) == host_keys


def _marker_image(client, base_id: str) -> str:
    """An image that differs from the workspace image by one marker file."""
    tag = f"dev8-test/marker:{OWNER}"
    container = client.containers.create(
        base_id, entrypoint=["sh", "-c", "echo marker > /etc/dev8-test-marker"]
    )
    try:
        container.start()
        container.wait()
        container.commit(
            repository=tag.split(":")[0],
            tag=OWNER,
            changes=[
                f"LABEL {LABEL_OWNER}={OWNER}",
                "ENTRYPOINT "
                '["/usr/bin/tini", "--", "/opt/dev8/venv/bin/python", "-m", "dev8.agent"]',
            ],
        )
    finally:
        container.remove(force=True)
    return tag


def test_rm_keeps_volumes_and_up_adopts_them_and_purge_destroys_them(service, client, ssh_key):
    ws = up(service, "adopt")
    data = Payload("adopt")
    data.write(ws.ports["ssh"], ssh_key)
    service.remove("adopt")
    assert service.list() == []
    volumes = {v.name for v in service.provider.volumes(ws.id)}
    assert volumes == {f"dev8-{ws.id}-home", f"dev8-{ws.id}-workspace", f"dev8-{ws.id}-system"}

    again = up(service, "adopt")
    assert again.id == ws.id
    data.check(again.ports["ssh"], ssh_key)

    destroyed = service.remove("adopt", purge=True)
    assert set(destroyed) == volumes
    assert service.provider.volumes(ws.id) == []
    assert service.store.find(OWNER, "adopt") is None
    fresh = up(service, "adopt")
    assert fresh.id != ws.id
    assert ssh(fresh.ports["ssh"], ssh_key, "ls /workspace").stdout == b""


def test_two_workspaces_run_side_by_side(service, ssh_key):
    one, two = up(service, "left"), up(service, "right")
    assert set(one.ports.values()).isdisjoint(two.ports.values())
    ssh(one.ports["ssh"], ssh_key, "cat > /workspace/who", stdin=b"left")
    ssh(two.ports["ssh"], ssh_key, "cat > /workspace/who", stdin=b"right")
    assert ssh(one.ports["ssh"], ssh_key, "cat /workspace/who").stdout == b"left"
    assert ssh(two.ports["ssh"], ssh_key, "cat /workspace/who").stdout == b"right"
    assert {ws.name for ws in service.list()} == {"left", "right"}


def test_missing_image_creates_nothing(service, client):
    with pytest.raises(ImageNotFound):
        up(service, "noimage", image="dev8-test/does-not-exist:1")
    assert service.store.find(OWNER, "noimage") is None
    assert owned_objects(client) == ([], [])


def test_a_create_that_fails_half_way_leaves_nothing(service, client, workspace_image):
    """The image exists and the container is created, but it cannot start: `up` undoes it all."""
    broken = f"dev8-test/broken:{OWNER}"
    container = client.containers.create(workspace_image, entrypoint=["true"])
    container.commit(
        repository=broken.split(":")[0],
        tag=OWNER,
        changes=[f"LABEL {LABEL_OWNER}={OWNER}", 'ENTRYPOINT ["/no/such/agent"]'],
    )
    container.remove()
    with pytest.raises(Dev8Error):
        up(service, "halfway", image=broken)
    assert service.store.find(OWNER, "halfway") is None
    containers, volumes = owned_objects(client)
    assert containers == [] and volumes == []


def test_provider_failure_after_volumes_cleans_them_up(service, client, monkeypatch):
    """Fault injection: the engine refuses the container after the volumes were made.
    (The refusal is injected; the volumes and their cleanup are real.)"""
    from docker.errors import APIError
    from docker.models.containers import ContainerCollection

    def refuse(_self, **_kwargs):
        raise APIError("injected: no space left on device")

    monkeypatch.setattr(ContainerCollection, "create", refuse)
    with pytest.raises(Dev8Error, match="injected"):
        up(service, "injected")
    monkeypatch.undo()
    assert service.store.find(OWNER, "injected") is None
    assert owned_objects(client) == ([], [])


def test_vanished_container_is_reported_and_recreated(service, client, ssh_key):
    ws = up(service, "vanish")
    data = Payload("vanish")
    data.write(ws.ports["ssh"], ssh_key)
    client.containers.get(f"dev8-{ws.id}").remove(force=True)
    seen = service.get("vanish")
    assert seen.observed_state is ObservedState.MISSING and "dev8 start" in seen.status_message
    ws = service.start("vanish")
    data.check(ws.ports["ssh"], ssh_key)


def test_a_crash_loop_is_reported_truthfully(service, client):
    ws = up(service, "crashloop")
    client.containers.get(f"dev8-{ws.id}").stop()  # stopped behind dev8's back
    seen = service.get("crashloop")
    assert seen.desired_state is DesiredState.RUNNING
    assert seen.observed_state is ObservedState.STOPPED and "outside dev8" in seen.status_message
