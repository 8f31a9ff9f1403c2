"""The server's kept backups without an engine: listing, lookups that serve only what the
listing names, request checks, and progress as operation events."""

from __future__ import annotations

import pytest
from tests.archives import member, write_archive

from dev8.core.errors import InvalidInput, NotFound
from dev8.core.resources import Resources
from dev8.core.workspace import Workspace
from dev8.service.kept_backups import BACKUP_ID, EventProgress, KeptBackups

BACKUP = "20261126T120000Z-abc123"
SMALL = Resources(2, 4096)


@pytest.fixture
def kept(tmp_path):
    return KeptBackups(tmp_path / "backups", snapshot_home=tmp_path)


@pytest.fixture
def workspace():
    return Workspace("ws0123456789", "demo", "alice", "dev8/workspace:latest", "sha256:a", SMALL)


def make_backup(kept, workspace, backup_id=BACKUP, volumes=("home", "workspace")):
    folder = kept.root / workspace.id / backup_id
    folder.mkdir(parents=True)
    for volume in volumes:
        write_archive(
            folder / f"demo-{volume}-20261126T120000Z.tar.zst",
            [member("a.txt", data=volume.encode())],
            volume=volume,
        )
    return folder


def test_listing_shows_complete_backups_oldest_first(kept, workspace):
    assert kept.list(workspace) == []
    make_backup(kept, workspace, "20261127T000000Z-bbbbbb")
    make_backup(kept, workspace)
    (kept.root / workspace.id / "20261128T000000Z-cccccc").mkdir()  # failed: no archives
    (kept.root / workspace.id / "not-a-backup").mkdir()
    listed = kept.list(workspace)
    assert [b.id for b in listed] == [BACKUP, "20261127T000000Z-bbbbbb"]
    assert listed[0].created_at == "2026-11-26T12:00:00+00:00"
    assert [a.manifest.volume for a in listed[0].archives] == ["home", "workspace"]


def test_only_archives_the_listing_names_are_served(kept, workspace, tmp_path):
    folder = make_backup(kept, workspace)
    (tmp_path / "secret").write_text("not an archive")
    name = "demo-home-20261126T120000Z.tar.zst"
    assert kept.archive_path(workspace, BACKUP, name) == folder / name
    for bad in ("../../secret", "../secret", "/etc/passwd", ".hidden.tar.zst", ""):
        with pytest.raises(NotFound):
            kept.archive_path(workspace, BACKUP, bad)
    for bad_id in ("../" + BACKUP, "20261126T120000Z-zzzzzz", "x"):
        with pytest.raises(NotFound):
            kept.get(workspace, bad_id)


def test_restore_params_pick_the_asked_volume(kept, workspace):
    make_backup(kept, workspace)
    assert kept.restore_params(workspace, BACKUP, "home")["files"] == [
        "demo-home-20261126T120000Z.tar.zst"
    ]
    assert len(kept.restore_params(workspace, BACKUP, "all")["files"]) == 2
    with pytest.raises(NotFound, match="holds no system volume"):
        kept.restore_params(workspace, BACKUP, "system")
    with pytest.raises(InvalidInput):
        kept.restore_params(workspace, BACKUP, "everything")


def test_new_backup_and_snapshot_params_are_checked(kept):
    params = kept.new_backup_params("home", "tar.gz", True)
    assert BACKUP_ID.fullmatch(params["backup_id"])
    assert (params["volume"], params["format"], params["stop"]) == ("home", "tar.gz", True)
    with pytest.raises(InvalidInput):
        kept.new_backup_params("home", "zip", False)
    assert kept.snapshot_restore_params("latest", "all")["snapshot_id"] == "latest"
    assert kept.snapshot_restore_params("e7243f23", "home")["volume"] == "home"
    for bad in ("E7243F23", "e72", "latest; rm -rf /", "../x"):
        with pytest.raises(InvalidInput):
            kept.snapshot_restore_params(bad, "all")


def test_delete_removes_the_backup_folder(kept, workspace):
    folder = make_backup(kept, workspace)
    kept.delete(workspace, BACKUP)
    assert not folder.exists()
    with pytest.raises(NotFound):
        kept.delete(workspace, BACKUP)


def test_progress_becomes_a_few_events(monkeypatch):
    events: list[str] = []
    progress = EventProgress(events.append)
    clock = iter([0.0, 1.0, 6.0, 6.0, 7.0])
    monkeypatch.setattr("dev8.service.kept_backups.time.monotonic", lambda: next(clock))
    progress.message("stopping the workspace")
    progress.start("home     ", 200)
    progress.update(50)  # 1 s after the start: too soon
    progress.update(100)  # 6 s: reported
    progress.update(150)  # 7 s: too soon again
    progress.finish()
    assert events == ["stopping the workspace", "home", "home: 50%", "home: done"]
