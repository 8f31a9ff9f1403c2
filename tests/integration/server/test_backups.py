"""Backups and snapshots through the API of a real `dev8 server` process, on the real engine
and image: the server makes a backup and keeps it, lists it, serves its archives for
download (checked as a restore would check them), restores it, and does the same with a
restic snapshot; a member cannot reach another member's backups (the authorization matrix
covers every endpoint)."""

from __future__ import annotations

import pytest

from dev8.backup.archive import open_archive
from dev8.backup.safety import scan
from dev8.client.models import Workspace as RemoteWorkspace
from dev8.core.errors import InvalidInput, NotFound
from dev8.core.images import workspace_image
from tests.integration.owned import OWNER, remove_owned
from tests.integration.server.process import ServerProcess

NOTES = "/home/dev8/notes.txt"
CODE = "/workspace/app/main.py"


@pytest.fixture
def server(tmp_path, client, workspace_image):
    process = ServerProcess(tmp_path / "server").start()
    yield process
    process.stop()


def write(container, path: str, text: str) -> None:
    result = container.exec_run(
        ["sh", "-c", f'mkdir -p "$(dirname {path})" && printf %s "$0" > {path}', text],
        user="dev8",
    )
    assert result.exit_code == 0, result.output


def read(container, path: str) -> str:
    result = container.exec_run(["cat", path], user="dev8")
    assert result.exit_code == 0, result.output
    return result.output.decode()


def test_backup_download_restore_and_snapshot_through_the_api(server, client, tmp_path):
    owner = f"{OWNER}-kept"
    try:
        run(server, client, owner, tmp_path)
    finally:
        server.stop()
        remove_owned(client, owner)


def run(server, docker, owner, tmp_path):
    me = server.user(owner, "")
    workspace = me.workspaces.create("keeper", image=workspace_image()).wait()
    assert workspace.state == "running"
    container = docker.containers.get(f"dev8-{workspace.id}")
    write(container, NOTES, "before the backup\n")
    write(container, CODE, "print('v1')\n")

    # A backup is an operation in the workspace's history; the server keeps its archives.
    operation = workspace.backup(volume="all").operations[0].wait()
    backup_id = operation.attrs["outcome"]["backup_id"]
    assert workspace.history()[0].attrs["action"] == "backup"
    [kept] = [b for b in workspace.backups() if b["id"] == backup_id]
    volumes = {a["volume"]: a for a in kept["archives"]}
    assert set(volumes) == {"home", "workspace", "system"}
    assert all(a["crash_consistent"] for a in kept["archives"])  # it was running

    # Downloaded, the home archive is a complete dev8 archive that passes a restore's checks.
    home = volumes["home"]
    local = workspace.download_archive(backup_id, home["file"], tmp_path / home["file"])
    archive = open_archive(local)
    assert archive.manifest.volume == "home" and archive.manifest.workspace_id == workspace.id
    assert local.stat().st_size == home["size_bytes"]
    assert scan(archive, lambda _n: None).sha256 == home["sha256"]
    with pytest.raises(NotFound):
        workspace.download_archive(backup_id, "../../server.db", tmp_path / "stolen")
    with pytest.raises(NotFound):
        workspace.download_archive(backup_id, "nothing.tar.zst", tmp_path / "nothing")

    # Restoring one volume puts back exactly what it held and leaves the others alone.
    write(container, NOTES, "changed after the backup\n")
    write(container, CODE, "print('v2')\n")
    restored = workspace.restore_backup(backup_id, volume="home").operations[0].wait()
    assert restored.attrs["outcome"]["volumes"] == ["home"]
    container = docker.containers.get(f"dev8-{workspace.id}")
    assert workspace.reload().state == "running"
    assert read(container, NOTES) == "before the backup\n"
    assert read(container, CODE) == "print('v2')\n"

    # Snapshots: made, listed with their volumes, restored by "latest".
    assert workspace.snapshots() == []
    made = workspace.snapshot(keep_last=3).operations[0].wait().attrs["outcome"]
    [listed] = workspace.snapshots()
    assert listed["id"].startswith(made["snapshot_id"])
    assert sorted(listed["volumes"]) == ["home", "system", "workspace"]
    write(container, CODE, "print('v3')\n")
    workspace.restore_snapshot("latest", volume="workspace").operations[0].wait()
    container = docker.containers.get(f"dev8-{workspace.id}")
    assert read(container, CODE) == "print('v2')\n"
    assert read(container, NOTES) == "before the backup\n"

    # Bad requests are refused before anything is queued.
    before = len(workspace.history())
    with pytest.raises(InvalidInput):
        workspace.restore_snapshot("not-an-id")
    with pytest.raises(NotFound):
        workspace.restore_backup("20200101T000000Z-000000")
    with pytest.raises(InvalidInput):
        workspace.backup(volume="everything")
    assert len(workspace.history()) == before

    # Another member is told there is nothing; deleting a backup removes its archives.
    other = server.user(f"{owner}-other", "")
    theirs = RemoteWorkspace(other, {"name": "keeper", "owner": owner})
    with pytest.raises(NotFound):
        theirs.backups()
    with pytest.raises(NotFound):
        theirs.download_archive(backup_id, home["file"], tmp_path / "theirs")
    workspace.delete_backup(backup_id)
    assert [b for b in workspace.backups() if b["id"] == backup_id] == []
    workspace.remove(purge=True).wait()
