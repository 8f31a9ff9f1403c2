"""Skipping restic when a workspace's volumes did not change since their last snapshot: the
helper's script run with bash and a stand-in `restic`, and the state dev8 keeps."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dev8.backup import unchanged
from dev8.backup.restic import Repository
from dev8.core.naming import RESTORE_DIR

FAKE_RESTIC = """#!/bin/sh
echo "$*" >> "$CALLS"
read -r password
echo "password=$password" >> "$CALLS"
case "$*" in *" cat snapshot "*) exit "${CAT_EXIT:-0}" ;; esac
echo '{"message_type":"summary","snapshot_id":"0123abcd"}'
"""
REMOTE = Repository("s3:s3.example.net/bucket")


@pytest.fixture
def volumes(tmp_path: Path) -> list[str]:
    roots = [tmp_path / "home", tmp_path / "workspace"]
    for root in roots:
        (root / "dir").mkdir(parents=True)
        (root / "dir" / "file.txt").write_text("one")
    return [str(root) for root in roots]


def run(tmp_path: Path, volumes: list[str], last, repository=REMOTE, **env: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "restic"
    fake.write_text(FAKE_RESTIC)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    argv = unchanged.snapshot_script(repository, ["backup", "--json", *volumes], volumes, last)
    done = subprocess.run(
        argv,
        input=b"AWS_ACCESS_KEY_ID=k\n\nsecret pass\n",
        capture_output=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), **env},
        check=False,
    )
    lines = done.stderr.decode().splitlines()
    fingerprint = next(
        (line.split()[-1] for line in lines if line.startswith(unchanged.FINGERPRINT_LINE)), ""
    )
    return done.returncode, lines, fingerprint, calls.read_text().splitlines()


def test_a_first_snapshot_runs_restic_with_the_password_on_stdin(tmp_path, volumes):
    code, lines, fingerprint, calls = run(tmp_path, volumes, None)
    assert code == 0 and len(fingerprint) == 64
    assert calls[0].startswith("-r s3:s3.example.net/bucket --cache-dir /cache backup --json")
    assert calls[1] == "password=secret pass"
    assert any('"snapshot_id":"0123abcd"' in line for line in lines)


def test_unchanged_volumes_skip_restic_while_the_snapshot_exists(tmp_path, volumes):
    _, _, fingerprint, _ = run(tmp_path, volumes, None)
    last = unchanged.LastSnapshot(REMOTE.url, "0123abcd", fingerprint)
    code, lines, again, calls = run(tmp_path, volumes, last)
    assert code == 0 and again == fingerprint
    assert unchanged.UNCHANGED_LINE in lines
    assert [c for c in calls if " backup " in f" {c} "] == []
    assert "cat snapshot 0123abcd" in calls[0]
    # Gone from the repository (another machine pruned it): restic runs.
    code, lines, _, calls = run(tmp_path, volumes, last, CAT_EXIT="1")
    assert unchanged.UNCHANGED_LINE not in lines and any(" backup " in c for c in calls)


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "dir" / "file.txt").write_text("two"),
        lambda root: (root / "dir" / "new").write_text(""),
        lambda root: (root / "dir" / "file.txt").unlink(),
        lambda root: (root / "dir" / "file.txt").chmod(0o600),
        lambda root: os.utime(root / "dir" / "file.txt", (1, 1)),
        lambda root: (root / "dir" / "file.txt").rename(root / "dir" / "moved.txt"),
    ],
)
def test_any_change_restic_would_see_changes_the_fingerprint(tmp_path, volumes, change):
    _, _, before, _ = run(tmp_path, volumes, None)
    change(Path(volumes[1]))
    _, _, after, _ = run(tmp_path, volumes, None)
    assert after != before


def test_the_restore_staging_area_is_left_out(tmp_path, volumes):
    staging = Path(volumes[0]) / RESTORE_DIR
    staging.mkdir()
    _, _, before, _ = run(tmp_path, volumes, None)
    (staging / "incoming").mkdir()
    (staging / "incoming" / "big").write_text("staged")
    assert run(tmp_path, volumes, None)[2] == before


def test_a_local_repository_without_the_snapshot_runs_restic(tmp_path, volumes):
    local = Repository(str(tmp_path / "repo"))
    _, _, fingerprint, _ = run(tmp_path, volumes, None, local)
    last = unchanged.LastSnapshot(local.url, "0123abcd", fingerprint)
    code, lines, _, calls = run(tmp_path, volumes, last, local)
    assert code == 0 and unchanged.UNCHANGED_LINE not in lines
    assert calls[0].startswith("-r /repo --no-cache backup")


def test_state_is_kept_per_workspace_and_repository(tmp_path):
    repository = Repository("/srv/snapshots")
    last = unchanged.LastSnapshot(repository.url, "0123abcd", "f" * 64, 10, 2048)
    assert unchanged.load(tmp_path, "ws1", repository) is None
    unchanged.save(tmp_path, "ws1", last)
    assert unchanged.load(tmp_path, "ws1", repository) == last
    assert unchanged.load(tmp_path, "ws2", repository) is None
    assert unchanged.load(tmp_path, "ws1", Repository("/elsewhere")) is None
    unchanged.forget(tmp_path, "ws1")
    assert unchanged.load(tmp_path, "ws1", repository) is None


def test_an_unreadable_state_is_dropped(tmp_path):
    path = tmp_path / unchanged.STATE_DIR / "ws1.json"
    path.parent.mkdir()
    path.write_text("{not json")
    assert unchanged.load(tmp_path, "ws1", Repository("/srv/snapshots")) is None
    assert not path.exists()
