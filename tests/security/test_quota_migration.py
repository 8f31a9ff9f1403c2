"""Issue 16, item 16 (migration): volumes made before quotas were enforced stay unbounded, so
a member keeps the power to fill the host's disk. `dev8 quota NAME --bound` moves them onto
bounded volumes (ext4 in a sparse image on a loop device) under the same names, with the
data as it was; a volume holding more than its quota is refused before anything changes;
an interrupted move loses nothing (the next start adopts the copy).

Real engine, real loop devices (skipped where the host cannot enforce quotas)."""

from __future__ import annotations

import pytest
from docker.errors import NotFound as DockerNotFound

from dev8.backup.scripts import copy_volume_argv
from dev8.core.errors import InvalidInput
from dev8.core.naming import volume_name
from dev8.providers.base import HelperMount
from dev8.providers.docker.loopquota import image_path
from dev8.providers.docker.provider import DockerProvider
from dev8.service.volumes import VolumeService
from dev8.service.workspaces import CreateRequest, WorkspaceService
from dev8.store.store import Store
from tests.integration.conftest import OWNER, client, workspace_image  # noqa: F401 (engine)
from tests.security.test_quota_enforced import MIB, _can_enforce, _sh, _write

QUOTA = 64 * MIB
# Owners, modes, a symbolic link, a hard link and a 3 MiB file: what the move must keep.
FILL = (
    "mkdir -p $HOME/proj && cd $HOME/proj && head -c 3145728 /dev/urandom > data"
    " && ln -s data link && ln data hard && chmod 640 data && sudo touch rootfile"
)
DESCRIBE = (
    "cd $HOME/proj && sha256sum data | cut -c1-16 && readlink link"
    " && stat -c '%U %a %h' data rootfile && df --output=size -B1M $HOME | tail -1"
)


@pytest.fixture
def unbounded(tmp_path, monkeypatch, client, workspace_image):  # noqa: F811
    """A service whose workspaces were made with enforcement off, and a function giving a
    service on the same store with enforcement on (as after an upgrade)."""
    reason = _can_enforce()
    if reason:
        pytest.skip(f"quotas cannot be enforced here: {reason}")
    monkeypatch.setenv("DEV8_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("DEV8_QUOTA_ENFORCE", "off")
    store_path = tmp_path / "dev8.db"
    providers: list[DockerProvider] = []

    def service() -> WorkspaceService:
        providers.append(DockerProvider(client))
        return WorkspaceService(
            store=Store.open_sqlite(store_path), provider=providers[-1], owner=OWNER
        )

    def enforcing() -> WorkspaceService:
        monkeypatch.setenv("DEV8_QUOTA_ENFORCE", "loop")
        return service()

    yield service(), enforcing
    made = service()
    for workspace in made.store.list(OWNER, include_removed=True):
        made.provider.remove(workspace.id)
        made.provider.remove_volumes(workspace.id)


def test_existing_volumes_move_onto_bounded_ones_with_their_data(unbounded, tmp_path):
    before_service, enforcing = unbounded
    ws = before_service.up(CreateRequest(name="old"))
    assert _sh(before_service, "old", FILL)[0] == 0
    code, before = _sh(before_service, "old", DESCRIBE)
    assert code == 0, before
    assert not before_service.provider.volume_enforced(ws.id, "home")

    service = enforcing()
    VolumeService(service).set_quotas("old", {"home": QUOTA}, bound_existing=True)

    assert service.provider.volume_enforced(ws.id, "home")
    assert service.provider.volume_enforced(ws.id, "workspace")
    assert service.get("old").observed_state.value == "running"  # started again
    code, after = _sh(service, "old", DESCRIBE)
    assert code == 0, after
    # Same bytes, link, owners, modes and link count; only the file system's size differs.
    assert before.splitlines()[:-1] == after.splitlines()[:-1]
    assert int(after.splitlines()[-1]) <= QUOTA // MIB
    code, out = _write(service, "old", 100)
    assert code != 0 and "No space left on device" in out
    image = image_path(tmp_path / "data" / "quota", volume_name(ws.id, "home"))
    assert image.stat().st_size == QUOTA
    with pytest.raises(DockerNotFound):  # the copy's temporary definition is gone
        service.provider.client.volumes.get(volume_name(ws.id, "home") + "-bounding")


def test_a_volume_holding_more_than_its_quota_is_refused_unchanged(unbounded):
    before_service, enforcing = unbounded
    ws = before_service.up(CreateRequest(name="full"))
    assert _write(before_service, "full", 8)[0] == 0  # 8 MiB, more than the 4 MiB asked

    service = enforcing()
    with pytest.raises(InvalidInput, match=r"home holds .* more than its quota of 4.0 MiB"):
        VolumeService(service).set_quotas("full", {"home": 4 * MIB}, bound_existing=True)
    assert not service.provider.volume_enforced(ws.id, "home")
    assert "home" not in service.get("full").quotas  # the record did not change
    assert _sh(service, "full", "test -s $HOME/big")[0] == 0


def test_an_interrupted_move_loses_nothing(unbounded):
    """The move stopped after the old volume went and before the bounded one took its
    name: the data is in the image alone, and the next start adopts it."""
    before_service, enforcing = unbounded
    ws = before_service.up(CreateRequest(name="cut"))
    assert _sh(before_service, "cut", FILL)[0] == 0
    code, before = _sh(before_service, "cut", "sha256sum $HOME/proj/data")
    before_service.stop("cut")

    service = enforcing()
    provider = service.provider
    provider.remove(ws.id)  # as the move does: no container may mount the volume
    copy = provider.prepare_enforced(ws.id, "home", QUOTA)
    mounts = [
        HelperMount("/from", volume=volume_name(ws.id, "home")),
        HelperMount("/to", volume=copy, read_only=False),
    ]
    VolumeService(service)._helper(ws.id, "bound", copy_volume_argv("/from", "/to"), mounts)
    provider.client.volumes.get(copy).remove()
    provider.client.volumes.get(volume_name(ws.id, "home")).remove()  # ... and here it stopped

    service.start("cut")
    assert provider.volume_enforced(ws.id, "home")
    assert _sh(service, "cut", "sha256sum $HOME/proj/data") == (code, before)
    assert _sh(service, "cut", "readlink $HOME/proj/link") == (0, "data\n")
