"""Snapshots with the real restic, in a local directory and in Azure Blob (Azurite)."""

from __future__ import annotations

import time

import pytest

from dev8.core.errors import Conflict, InvalidInput, NotFound
from dev8.core.naming import container_name, volume_name
from dev8.core.quotas import MIN_QUOTA
from dev8.service.snapshots import SnapshotService
from tests.integration.backup.helpers import generate, listing, shell


@pytest.fixture
def snapshots(service, tmp_path):
    return SnapshotService(service, env={}, home=tmp_path / "dev8-data")


def test_incremental_snapshots_restore_and_check(snapshots, make_workspace, client, service):
    ws = make_workspace("snaps")
    volume = volume_name(ws.id, "workspace")
    generate(client, volume)
    first_listing = listing(client, volume)

    first = snapshots.create("snaps")
    assert first.files_new > 20 and first.files_unmodified == 0
    shell(client, volume, "echo changed >> /v/names/with\\ space.txt")
    second = snapshots.create("snaps")
    # Incremental: one file read again, the rest recognised unchanged by its metadata.
    assert second.files_changed == 1 and second.files_new == 0
    assert second.files_unmodified == first.files_new - 1
    assert second.data_added < first.data_added / 100
    # Nothing changed since: restic does not run, the last snapshot stands for now.
    again = snapshots.create("snaps")
    assert again.unchanged and again.snapshot_id == second.snapshot_id
    assert again.files_unmodified == first.files_new and again.data_added == 0

    found = snapshots.list("snaps")
    assert [s.id[:8] for s in found] == [first.snapshot_id[:8], second.snapshot_id[:8]]
    assert set(found[0].roles) == {"home", "workspace", "system"}

    snapshots.restore("snaps", first.snapshot_id[:8])
    # restic 0.14 (Debian bookworm) writes a sparse file's holes as zeros: same bytes.
    assert _dense(listing(client, volume)) == _dense(first_listing)
    assert "no errors" in snapshots.check()
    assert "no errors" in snapshots.check(read_data=True)

    snapshots.restore("snaps", "latest", volume="workspace", as_name="snaps-copy")
    copy = service.find("snaps-copy")
    assert b"changed" in shell(
        client, volume_name(copy.id, "workspace"), "cat '/v/names/with space.txt'"
    )


def test_retention_prunes_as_configured(snapshots, make_workspace, client):
    ws = make_workspace("keep")
    volume = volume_name(ws.id, "workspace")
    ids = []
    for i in range(4):
        shell(client, volume, f"echo {i} > /v/file-{i}")
        ids.append(snapshots.create("keep").snapshot_id[:8])
    assert len(snapshots.list("keep")) == 4
    shell(client, volume, "echo 4 > /v/file-4")
    result = snapshots.create("keep", keep_last=2)
    assert sorted(result.removed) == sorted(ids[:3])
    assert [s.short_id for s in snapshots.list("keep")] == [ids[3], result.snapshot_id[:8]]
    assert snapshots.remove("keep", [ids[3]]) == [ids[3]]
    assert [s.short_id for s in snapshots.list("keep")] == [result.snapshot_id[:8]]
    assert "no errors" in snapshots.check()


def test_snapshot_errors_are_clear(snapshots, make_workspace):
    make_workspace("errs")
    assert snapshots.list("errs") == []
    with pytest.raises(NotFound, match="no snapshot repository yet"):
        snapshots.check()
    snapshots.create("errs")
    with pytest.raises(NotFound, match="no snapshot 'beef'"):
        snapshots.restore("errs", "beef")
    with pytest.raises(InvalidInput, match="not both"):
        snapshots.remove("errs", ["x"], keep_last=1)
    with pytest.raises(InvalidInput, match="at least 1"):
        snapshots.create("errs", keep_last=0)


def test_snapshots_in_azure_blob_storage(service, make_workspace, client, tmp_path, azurite):
    """The Azure repository type against Azurite; the key reaches restic on stdin only."""
    env = {**azurite, "DEV8_SNAPSHOT_REPOSITORY": "azure:dev8test:/snapshots"}
    snapshots = SnapshotService(service, env=env, home=tmp_path / "dev8-data")
    assert snapshots.repository.remote
    ws = make_workspace("azure")
    volume = volume_name(ws.id, "workspace")
    shell(client, volume, "echo one > /v/a.txt")
    first = snapshots.create("azure")
    shell(client, volume, "echo two > /v/a.txt")
    second = snapshots.create("azure")
    assert second.files_changed == 1
    third = snapshots.create("azure")  # unchanged: the remote snapshot is found, restic skipped
    assert third.unchanged and third.snapshot_id == second.snapshot_id
    assert len(snapshots.list("azure")) == 2
    snapshots.restore("azure", first.snapshot_id[:8], volume="workspace")
    assert shell(client, volume, "cat /v/a.txt") == b"one\n"
    assert "no errors" in snapshots.check()
    password = (tmp_path / "dev8-data" / "snapshot-password").stat()
    assert password.st_mode & 0o777 == 0o600


def _dense(entries: dict) -> dict:
    return {path: {k: v for k, v in e.items() if k != "sparse"} for path, e in entries.items()}


def test_a_running_workspace_is_frozen_while_a_remote_snapshot_reads_it(
    service, make_workspace, client, tmp_path, azurite
):
    """With a remote repository restic holds the cloud credentials in its environment while
    it reads the volumes: the workspace is paused meanwhile (no swap of a directory for a link
    to /proc/self can race it) and runs again after; a local repository does not pause it."""
    remote = SnapshotService(
        service,
        env={**azurite, "DEV8_SNAPSHOT_REPOSITORY": "azure:dev8test:/frozen"},
        home=tmp_path / "remote-data",
    )
    local = SnapshotService(service, env={}, home=tmp_path / "local-data")
    ws = make_workspace("frozen")
    service.start("frozen")
    container = client.containers.get(container_name(ws.id))
    since = int(time.time()) - 1
    remote.create("frozen")
    middle = int(time.time()) + 1
    local.create("frozen")
    until = int(time.time()) + 1
    assert _pauses(client, container.id, since, middle) == ["pause", "unpause"]
    assert _pauses(client, container.id, middle, until) == []
    container.reload()
    assert container.status == "running"
    # A dev8 killed during the snapshot leaves it frozen: starting it thaws it.
    container.pause()
    service.start("frozen")
    container.reload()
    assert container.status == "running"


def _pauses(client, container_id: str, since: int, until: int) -> list[str]:
    events = client.events(
        since=since,
        until=until,
        filters={"container": container_id, "event": ["pause", "unpause"]},
        decode=True,
    )
    return [event["Action"] for event in events]


def test_a_snapshot_over_the_quota_is_refused_before_the_workspace_stops(
    snapshots, make_workspace, client, service
):
    """Issue 16, item 15 for snapshots: the fetched trees are measured before anything is
    stopped or staged; over the quota is one 409 line and the volume is as it was."""
    ws = make_workspace("oversnap")
    home = volume_name(ws.id, "home")
    shell(client, home, "head -c 4194304 /dev/urandom > /v/big.bin")
    made = snapshots.create("oversnap")
    shell(client, home, "echo newer > /v/newer.txt")
    before = listing(client, home)
    workspace = service.store.find(ws.owner, "oversnap")
    workspace.quotas = {"home": MIN_QUOTA}
    service.store.save(workspace)
    with pytest.raises(Conflict, match=r"home data to restore is .*, over the .* quota"):
        snapshots.restore("oversnap", made.snapshot_id[:8], volume="home")
    assert listing(client, home) == before
