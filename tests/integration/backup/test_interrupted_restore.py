"""A restore killed half way, or interrupted during its swap, leaves the old data intact."""

from __future__ import annotations

import json
import signal
import time

import docker.errors
import pytest

from dev8.backup.archive import open_archive
from dev8.backup.progress import TransferProgress
from dev8.backup.safety import scan
from dev8.backup.scripts import TARGET
from dev8.core.naming import (
    LABEL_ROLE,
    LABEL_WORKSPACE_ID,
    RESTORE_DIR,
    VOLUME_MOUNTS,
    volume_name,
)
from dev8.service.backups import BackupService
from dev8.service.volume_jobs import role_mounts
from dev8.service.workspaces import CreateRequest
from tests.integration.backup.helpers import listing, shell
from tests.security.restore_kill import KILLED, killer_argv, swap_program


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
    # The restore stopped the workspace before it wrote a volume (issue 16, item 1); killed,
    # it left it stopped: `dev8 start` (or the server) starts it again.
    status = json.loads(dev8("status", "killme", "--json").stdout)
    assert status["state"] == "stopped"

    # The next restore clears what the killed one left and completes.
    dev8("restore", "killme", "--from", str(tmp_path / "ws.tar.zst"), "--yes")
    after = listing(client, volume)
    assert "big.bin" in after and "b.txt" not in after
    assert b".dev8-restore" not in shell(client, volume, "ls -a /v")
    assert _helpers(client, workspace["id"], "restore") == []


# The swap helper's journal writes for home (the coordinator) and workspace: home moving-out,
# moving-in, swapped (1-3), workspace the same (4-6), home committed (7: the commit point),
# workspace done (8), home told (9). Killed before write N:
KILL_POINTS = {4: "old", 7: "old", 8: "new", 9: "new"}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_swap_killed_between_volumes_leaves_all_old_or_all_new_at_start(
    service, client, tmp_path, point
):
    """A restore of home and workspace whose swap helper is killed with SIGKILL between
    volumes (tests/security/restore_kill.py) leaves all of them old (not committed) or all
    new (committed); the agent settles it at the next start, before any service."""
    backups = BackupService(service)
    service.create(CreateRequest(name=f"swapkill{point}"))
    ws = service.find(f"swapkill{point}")
    volumes = {role: volume_name(ws.id, role) for role in ("home", "workspace")}
    for role, volume in volumes.items():
        shell(client, volume, f"echo old > /v/{role}.txt && chown -R 1000:1000 /v")
    archives = backups.backup(f"swapkill{point}", output=tmp_path)
    for role, volume in volumes.items():
        shell(client, volume, f"echo current > /v/{role}.txt && echo x > /v/later")

    restores = backups.restores
    for found in archives:
        if found.role in volumes:
            archive = open_archive(found.path)
            checked = scan(archive)
            restores._stage_archive(ws, found.role, archive, checked, "tok", TransferProgress())
    argv = killer_argv("journal", point, "install", "tok", [VOLUME_MOUNTS[r] for r in volumes])
    job = restores.jobs.job(
        ws, "swap", argv, role_mounts(ws.id, volumes, writable=True),
        env={"DEV8_SWAP_PY": swap_program()},
    )  # fmt: skip
    assert restores.jobs.run(job).exit_code == KILLED

    started = service.start(f"swapkill{point}")
    expected = b"old\n" if KILL_POINTS[point] == "new" else b"current\n"
    for role, volume in volumes.items():
        assert shell(client, volume, f"cat /v/{role}.txt") == expected, role
        assert (b"later" in shell(client, volume, "ls /v")) == (KILL_POINTS[point] == "old")
        # At most a tree staged and never swapped, left for the next restore to remove.
        journal = shell(client, volume, "cat /v/.dev8-restore/journal.json 2>/dev/null; true")
        assert journal == b"" or b'"state": "staging"' in journal, journal
    warnings = service.agent_status(f"swapkill{point}")["warnings"]
    assert any("an interrupted restore" in w for w in warnings), warnings
    assert started.observed_state.value == "running"


def _without_top_time(entries: dict) -> dict:
    return {**entries, ".": {k: v for k, v in entries["."].items() if k != "mtime_ns"}}
