"""Issue 16, item 1: a snapshot restore wrote through paths the member controls. restic
staged into ``~/.dev8-restore/tree`` while the workspace still ran, in a helper holding the
server's whole repository read-write (and, for S3/Azure, the cloud keys in its shell and
the host network); a member who swapped a symbolic link in during the ~1 s before restic
wrote had their files land in the repository's ``keys/`` and ``snapshots/`` (breaking every
other member's ``restic backup``), or replaced the helper's ``mv``.

Now restic fetches the snapshot into a scratch directory of dev8's with the repository
read-only and no workspace volume; the workspace is stopped before any helper writes its
volumes; the helper that copies the fetched tree in has no repository, secrets or network,
and removes a link planted at ``.dev8-restore`` instead of following it.

The engine test runs the attack: the member's running workspace swaps links into its
staging area as fast as it can (a polling loop standing in for the review's inotify
watcher), with links planted in the other volumes beforehand; the restore must succeed with
the snapshot's data, the repository must be byte for byte as it was, ``restic check`` clean,
and another member's snapshot must still work. Every helper the restore ran is checked too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dev8.core.naming import VOLUME_ROLES, container_name, volume_name
from dev8.providers.base import HelperMount
from dev8.service.snapshots import SnapshotService
from dev8.service.volume_jobs import VolumeJobs
from dev8.service.workspaces import CreateRequest, WorkspaceService
from tests.integration.backup.conftest import make_workspace  # noqa: F401
from tests.integration.backup.helpers import shell
from tests.integration.conftest import (  # noqa: F401 (the engine's fixtures)
    OWNER,
    client,
    provider,
    service,
    ssh_key,
    workspace_image,
)

OTHER = "other-member"

# Runs as root in the member's workspace: whenever restic's staging directory appears, it
# becomes a link to a tree of the member's whose home/dev8 leads to the helper's repository mount.
RACER = r"""
import os, time
area, evil = "/home/dev8/.dev8-restore", "/home/dev8/evil"
os.makedirs(evil + "/home", exist_ok=True)
os.path.islink(evil + "/home/dev8") or os.symlink("/repo/keys", evil + "/home/dev8")
open("/home/dev8/racer-ready", "w").close()
while True:
    path = area + "/tree"
    try:
        if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path):
            os.rename(path, path + ".moved")
            os.symlink("/target/evil", path)
    except OSError:
        pass
    time.sleep(0.0005)
"""


def repository_files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_helper_that_writes_a_volume_holds_nothing_else():
    """Fast: the rule every helper job is built under (``VolumeJobs.job``)."""
    jobs = VolumeJobs(provider=None, owner=OWNER, capability="test")  # type: ignore[arg-type]
    jobs._image = "sha256:helper"
    volume = HelperMount("/target", volume="dev8-x-home", read_only=False)
    secrets = b"AWS_SECRET_ACCESS_KEY=k\n\npw\n"
    for extra in (
        {"network": True},
        {"stdin": secrets},
        {"mounts": (volume, HelperMount("/repo", host_path="/srv/repo", read_only=False))},
    ):
        kw = {"mounts": (volume,), **extra}
        with pytest.raises(ValueError, match="more than it needs"):
            jobs.job("x", "restore", ["true"], **kw)
    # What restores do: the volume with a read-only scratch directory; restic with secrets
    # and the network but no volume.
    jobs.job("x", "restore", ["true"], (volume, HelperMount("/scratch", host_path="/s")))
    scratch = HelperMount("/scratch", host_path="/s", read_only=False)
    jobs.job("x", "snapshot", ["true"], (scratch,), network=True, stdin=secrets)


@pytest.fixture
def other_service(service: WorkspaceService, provider):  # noqa: F811
    other = WorkspaceService(store=service.store, provider=provider, owner=OTHER)
    yield other
    for workspace in other.store.list(OTHER, include_removed=True):
        provider.remove(workspace.id)
        provider.remove_volumes(workspace.id)


def test_a_member_racing_the_restore_cannot_reach_the_repository(
    service,  # noqa: F811
    other_service,
    provider,  # noqa: F811
    client,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    home = tmp_path / "dev8-data"
    mine = SnapshotService(service, env={}, home=home)
    theirs = SnapshotService(other_service, env={}, home=home)
    ws = service.create(CreateRequest(name="racer"))
    other = other_service.create(CreateRequest(name="bystander"))
    shell(client, volume_name(ws.id, "home"), "echo mine > /v/kept.txt")
    shell(client, volume_name(other.id, "workspace"), "echo theirs > /v/a.txt")
    snapshot = mine.create("racer").snapshot_id
    theirs.create("bystander")

    # Links planted where the helpers stage, in the volumes the racer does not watch.
    shell(client, volume_name(ws.id, "workspace"), "ln -s /usr/bin /v/.dev8-restore")
    shell(
        client,
        volume_name(ws.id, "system"),
        "mkdir /v/.dev8-restore && ln -s /scratch /v/.dev8-restore/incoming",
    )
    service.start("racer")
    container = client.containers.get(container_name(ws.id))
    container.exec_run(["python3", "-c", RACER], user="root", detach=True)
    shell(client, volume_name(ws.id, "home"), "until [ -e /v/racer-ready ]; do sleep 0.05; done")
    repository = home / "snapshots"
    before = repository_files(repository)

    seen = []
    run_helper = provider.run_helper

    def recording(job, on_stderr=None):
        seen.append((job, provider.status(ws.id).running))
        return run_helper(job, on_stderr)

    monkeypatch.setattr(provider, "run_helper", recording)
    mine.restore("racer", snapshot[:8])
    monkeypatch.undo()

    assert repository_files(repository) == before
    assert "no errors" in mine.check(read_data=True)
    assert service.find("racer").observed_state.value == "running"
    home_volume = volume_name(ws.id, "home")
    assert shell(client, home_volume, "cat /v/kept.txt") == b"mine\n"
    listing = shell(client, home_volume, "ls -A /v; ls -A /v/.dev8-restore 2>&1 || true")
    assert b"evil" not in listing and b"racer-ready" not in listing
    assert not list((home / "restores").iterdir())  # the scratch directory went

    volumes = {volume_name(ws.id, role) for role in VOLUME_ROLES}
    for job, running in seen:
        writes = [m for m in job.mounts if m.volume in volumes and not m.read_only]
        script = " ".join(job.argv)
        if job.stdin is not None:  # restic, with the secrets: never a volume
            assert not any(m.volume for m in job.mounts), job.purpose
        if any(m.target == "/scratch" for m in job.mounts) and job.stdin is not None:
            assert all(m.read_only for m in job.mounts if m.target == "/repo")  # the fetch
        if writes and any(tool in script for tool in ("restic -r", "tar --extract", "cp -a")):
            assert not running, f"{job.purpose} wrote a volume of the running workspace"
    assert any("--no-lock" in " ".join(job.argv) for job, _ in seen)

    shell(client, volume_name(other.id, "workspace"), "echo again >> /v/a.txt")
    assert theirs.create("bystander").files_changed == 1
