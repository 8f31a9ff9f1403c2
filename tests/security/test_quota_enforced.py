"""Issue 16, item 16: a member could fill the host's disk; on the local engine a quota only
warned. By default (``DEV8_QUOTA_ENFORCE=auto``, where the host can) each home and workspace
volume is an ext4 file system in a sparse image file of the quota's size on a loop device: a
write beyond it fails with ENOSPC inside the workspace, while the image costs the host only
what was written.

The engine part runs the real service on the real engine (root and loop devices needed);
the fallback and the decision are checked without one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from docker.errors import NotFound as DockerNotFound

from dev8.core.errors import InvalidInput
from dev8.core.naming import LABEL_ROLE, LABEL_WORKSPACE_ID, volume_name
from dev8.core.resources import PRESETS
from dev8.providers.base import WorkspaceSpec
from dev8.providers.docker.loopquota import (
    LABEL_ENFORCED,
    HostFacts,
    decide,
    host_facts,
    image_path,
    link_path,
)
from dev8.providers.docker.provider import DockerProvider
from dev8.providers.docker.volumes import DockerVolumes
from dev8.service.doctor import Doctor
from dev8.service.volumes import VolumeService
from dev8.service.workspaces import CreateRequest, WorkspaceService
from dev8.store.store import Store
from tests.integration.conftest import OWNER, client, workspace_image  # noqa: F401 (engine)
from tests.unit.providers.test_loopquota import HOST_CAN

MIB = 1024**2
QUOTA = 64 * MIB


def _can_enforce() -> str:
    facts = decide("loop", host_facts(local_engine=True))
    return "" if facts.enforced else facts.reason


@pytest.fixture
def enforcing(tmp_path, monkeypatch, client, workspace_image):  # noqa: F811
    reason = _can_enforce()
    if reason:
        pytest.skip(f"quotas cannot be enforced here: {reason}")
    monkeypatch.setenv("DEV8_QUOTA_ENFORCE", "loop")
    yield from _service(tmp_path, monkeypatch, client)


@pytest.fixture
def plain(tmp_path, monkeypatch, client, workspace_image):  # noqa: F811
    monkeypatch.setenv("DEV8_QUOTA_ENFORCE", "off")
    yield from _service(tmp_path, monkeypatch, client)


def _service(tmp_path, monkeypatch, client):  # noqa: F811
    monkeypatch.setenv("DEV8_HOME", str(tmp_path / "data"))
    provider = DockerProvider(client)
    service = WorkspaceService(
        store=Store.open_sqlite(tmp_path / "dev8.db"), provider=provider, owner=OWNER
    )
    yield service
    for workspace in service.store.list(OWNER, include_removed=True):
        provider.remove(workspace.id)
        provider.remove_volumes(workspace.id)


def _sh(service: WorkspaceService, name: str, script: str) -> tuple[int, str]:
    result = service.exec(name, ["sh", "-c", script])
    return result.exit_code, result.output.decode(errors="replace")


def _write(service: WorkspaceService, name: str, mib: int) -> tuple[int, str]:
    return _sh(service, name, f"dd if=/dev/zero of=$HOME/big bs=1M count={mib} 2>&1")


def _loop_devices(image: Path) -> list[str]:
    out = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True)
    return [line.split(":")[0] for line in out.stdout.splitlines() if line]


def test_a_write_beyond_the_home_quota_fails_and_the_image_stays_sparse(enforcing, tmp_path):
    service = enforcing
    ws = service.up(CreateRequest(name="quota", quotas={"home": QUOTA}))
    quota_dir = tmp_path / "data" / "quota"
    home, workspace = (image_path(quota_dir, volume_name(ws.id, r)) for r in ("home", "workspace"))
    assert home.stat().st_size == QUOTA and home.stat().st_mode & 0o077 == 0
    # Sparse: the default 100 GiB workspace quota costs the host a few MiB.
    assert workspace.stat().st_size == 100 * 1024**3
    assert workspace.stat().st_blocks * 512 < 64 * MIB

    code, out = _write(service, "quota", 100)
    assert code != 0 and "No space left on device" in out
    assert home.stat().st_blocks * 512 <= QUOTA  # what the host gave, at most the quota

    # A stop and start, then the loop device gone as after a reboot: still the same file
    # system, still enforced.
    service.stop("quota")
    service.start("quota")
    assert _sh(service, "quota", "test -s $HOME/big")[0] == 0
    service.stop("quota")
    for device in _loop_devices(home):
        subprocess.run(["losetup", "--detach", device], check=True)
    assert _loop_devices(home) == []
    service.start("quota")
    assert _loop_devices(home) and os.readlink(link_path(quota_dir, home.stem)) in (
        _loop_devices(home)
    )
    code, out = _write(service, "quota", 100)
    assert code != 0 and "No space left on device" in out


def test_the_quota_grows_never_shrinks_and_goes_with_the_purge(enforcing, tmp_path):
    service = enforcing
    ws = service.up(CreateRequest(name="grows", quotas={"home": QUOTA}))
    volumes = VolumeService(service)
    home = image_path(tmp_path / "data" / "quota", volume_name(ws.id, "home"))

    volumes.set_quotas("grows", {"home": 2 * QUOTA})
    assert home.stat().st_size == 2 * QUOTA
    code, out = _write(service, "grows", 100)  # over the old quota, within the new one
    assert code == 0, out
    with pytest.raises(InvalidInput, match="cannot shrink"):
        volumes.set_quotas("grows", {"home": QUOTA})
    assert service.get("grows").quotas["home"] == 2 * QUOTA  # the record did not change

    service.remove("grows", purge=True)
    assert not home.exists() and not home.with_suffix(".dev").exists()
    assert _loop_devices(home) == []


def test_doctor_polices_the_writable_layer(plain, monkeypatch):
    """No quota bounds the container's own layer on overlay2 over ext4 (``storage_opt``
    size needs xfs with pquota): doctor measures it and warns beyond a bound (lowered here
    to 16 MiB); with enforcement off, doctor says quotas only warn."""
    ws = plain.up(CreateRequest(name="layer"))
    code, out = _sh(plain, "layer", "dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>&1")
    assert code == 0, out
    # What the server's layer check reads, for every running workspace in one call.
    assert plain.provider.writable_layers()[ws.id] >= 32 * MIB
    monkeypatch.setattr("dev8.service.doctor.WRITABLE_LAYER_WARN", 16 * MIB)
    checks = {c.name: c for c in Doctor(plain).run("layer")}
    assert checks["writable layer"].verdict == "warn"
    assert "32." in checks["writable layer"].message or "MiB" in checks["writable layer"].message
    assert checks["quota enforcement"].message.startswith("warn only (DEV8_QUOTA_ENFORCE is off")


class _Volumes:
    """A stand-in for docker-py's volume collection: none exist, creations are recorded."""

    def __init__(self) -> None:
        self.created: list[dict] = []

    def get(self, name: str):
        raise DockerNotFound(name)

    def create(self, **kwargs):
        self.created.append(kwargs)


class _Client:
    def __init__(self) -> None:
        self.volumes = _Volumes()


def test_without_loop_devices_quotas_stay_warn_only_with_the_reason():
    """The fallback (the probe's input says no loop devices): plain volumes, and doctor's
    line says why. A stand-in client records what would be created."""
    enforcement = decide("auto", HostFacts(**{**HOST_CAN.__dict__, "loop_control": False}))
    assert not enforcement.enforced
    assert enforcement.describe().startswith("warn only (/dev/loop-control is missing")

    volumes = DockerVolumes()
    volumes.client = _Client()  # type: ignore[assignment]
    volumes.enforcement = enforcement  # type: ignore[misc]
    spec = WorkspaceSpec(
        "abcdef123456", "demo", OWNER, "img", PRESETS["small"], quotas={"home": QUOTA}
    )
    volumes._ensure_volumes(spec)
    created = volumes.client.volumes.created
    assert [v["labels"][LABEL_ROLE] for v in created] == ["home", "workspace", "system"]
    assert all("driver_opts" not in v and LABEL_ENFORCED not in v["labels"] for v in created)
    assert all(v["labels"][LABEL_WORKSPACE_ID] == "abcdef123456" for v in created)
