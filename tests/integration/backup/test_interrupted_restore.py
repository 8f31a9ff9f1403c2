"""A restore killed half way, or interrupted during its swap, leaves the old data intact."""

from __future__ import annotations

import json
import signal
import time

import docker.errors

from dev8.backup.scripts import TARGET
from dev8.core.naming import LABEL_ROLE, LABEL_WORKSPACE_ID, RESTORE_DIR, volume_name
from dev8.service.backups import BackupService
from dev8.service.workspaces import CreateRequest
from tests.integration.backup.helpers import listing, shell


def _helpers(client, workspace_id: str, purpose: str) -> list:
    filters = {"label": [f"{LABEL_WORKSPACE_ID}={workspace_id}", f"{LABEL_ROLE}=helper"]}
    return [
        c for c in client.containers.list(all=True, filters=filters) if f"-{purpose}-" in c.name
    ]


def _staged_bytes(client, workspace_id: str, name: str) -> int:
    """How much of ``name`` the running restore helper has extracted into its staging area
    (0 before it starts writing it)."""
    for helper in _helpers(client, workspace_id, "restore"):
        path = f"{TARGET}/{RESTORE_DIR}/incoming/{name}"
        try:
            result = helper.exec_run(["stat", "-c", "%s", path])
        except docker.errors.APIError:  # it ended meanwhile
            continue
        if result.exit_code == 0:
            return int(result.output)
    return 0


def test_killing_the_restore_half_way_leaves_the_old_data(dev8, client, tmp_path):
    dev8("up", "killme")
    workspace = json.loads(dev8("status", "killme", "--json").stdout)
    volume = volume_name(workspace["id"], "workspace")
    # Incompressible data, so that extracting it takes a while on purpose.
    shell(client, volume, "head -c 400000000 /dev/urandom > /v/big.bin && echo one > /v/a.txt")
    dev8("backup", "killme", "--volume", "workspace", "-o", str(tmp_path / "ws.tar.zst"))
    shell(client, volume, "rm /v/big.bin && echo two > /v/a.txt && echo new > /v/b.txt")
    before = listing(client, volume)

    restore = dev8(
        "restore", "killme", "--from", str(tmp_path / "ws.tar.zst"), "--yes", background=True
    )
    deadline = time.monotonic() + 120
    while not any(c.status == "running" for c in _helpers(client, workspace["id"], "restore")):
        assert restore.poll() is None, "the restore ended before it could be killed"
        assert time.monotonic() < deadline, "the restore never started extracting"
        time.sleep(0.05)
    # Killed while extracting: part of big.bin is in the staging area, not all of it.
    staged = _staged_bytes(client, workspace["id"], "big.bin")
    while not 0 < staged < 400000000:
        assert restore.poll() is None, "the restore ended before it could be killed"
        assert time.monotonic() < deadline, "the restore never extracted big.bin"
        time.sleep(0.05)
        staged = _staged_bytes(client, workspace["id"], "big.bin")
    restore.send_signal(signal.SIGKILL)
    restore.wait()
    # The orphaned helper finishes extracting into the staging area, and goes no further.
    for helper in _helpers(client, workspace["id"], "restore"):
        helper.wait(timeout=300)

    # Every file as it was. Only the top directory's time moved: the killed restore's
    # staging area is in it, and the next restore (or `doctor --fix`) removes it.
    assert _without_top_time(listing(client, volume)) == _without_top_time(before)
    status = json.loads(dev8("status", "killme", "--json").stdout)
    assert status["state"] == "running"

    # The next restore clears what the killed one left and completes.
    dev8("restore", "killme", "--from", str(tmp_path / "ws.tar.zst"), "--yes")
    after = listing(client, volume)
    assert "big.bin" in after and "b.txt" not in after
    assert b".dev8-restore" not in shell(client, volume, "ls -a /v")
    assert _helpers(client, workspace["id"], "restore") == []


def test_a_swap_interrupted_before_it_was_committed_is_rolled_back_at_start(
    service, client, tmp_path
):
    """The state a restore killed in the middle of its swap leaves behind: the new tree in
    place, the old one kept, nothing committed. The agent puts the old one back."""
    backups = BackupService(service)
    service.create(CreateRequest(name="swapkill"))
    ws = service.find("swapkill")
    volume = volume_name(ws.id, "home")
    shell(client, volume, "echo old > /v/notes.txt && chown -R 1000:1000 /v")
    [archive] = backups.backup("swapkill", volume="home", output=tmp_path)
    shell(client, volume, "echo current > /v/notes.txt && mkdir /v/later && echo x > /v/later/f")

    plan_archive = archive.path
    from dev8.backup.archive import open_archive
    from dev8.backup.safety import scan

    found = open_archive(plan_archive)
    restores = backups.restores
    restores._stage_archive(ws, "home", found, scan(found), "tok", backups_progress())
    restores._swap(ws, "swap", "tok", ["home"])  # swapped, never committed
    assert shell(client, volume, "cat /v/notes.txt") == b"old\n"

    started = service.start("swapkill")
    assert shell(client, volume, "cat /v/notes.txt /v/later/f") == b"current\nx\n"
    assert b".dev8-restore" not in shell(client, volume, "ls -a /v")
    warnings = service.agent_status("swapkill")["warnings"]
    assert any("rolled back an interrupted restore" in w for w in warnings), warnings
    assert started.observed_state.value == "running"


def _without_top_time(entries: dict) -> dict:
    return {**entries, ".": {k: v for k, v in entries["."].items() if k != "mtime_ns"}}


def backups_progress():
    from dev8.backup.progress import TransferProgress

    return TransferProgress()
