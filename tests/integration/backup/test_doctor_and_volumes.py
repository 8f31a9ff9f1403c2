"""doctor, volume ls, du, quotas and clean against real workspaces."""

from __future__ import annotations

import time

import pytest

from dev8.core.naming import (
    LABEL_OWNER,
    LABEL_ROLE,
    LABEL_WORKSPACE_ID,
    container_name,
    volume_name,
)
from dev8.service.doctor import Doctor
from dev8.service.volumes import VolumeService
from dev8.service.workspaces import CreateRequest
from tests.integration.backup.helpers import shell
from tests.integration.conftest import OWNER
from tests.integration.helpers import quota_enforcement_here, ssh

MIB = 1024**2


def verdicts(checks) -> dict[str, tuple[str, str]]:
    return {check.name: (check.verdict, check.message) for check in checks}


def test_doctor_on_a_healthy_running_workspace(service):
    service.up(CreateRequest(name="healthy"))
    checks = verdicts(Doctor(service).run("healthy"))
    for name in (
        "engine",
        "helper image",
        "home mount",
        "workspace mount",
        "system mount",
        "ownership",
        "home quota",
        "restores",
        "agent port",
        "IDE port",
        "SSH port",
    ):
        assert checks[name][0] == "ok", (name, checks[name])  # fmt: skip
    assert checks["quota enforcement"][0] == "info"
    assert checks["quota enforcement"][1] == quota_enforcement_here()


def test_doctor_finds_root_owned_files_and_fix_repairs_them(service, client):
    ws = service.create(CreateRequest(name="owners"))
    shell(
        client,
        volume_name(ws.id, "home"),
        "mkdir -p /v/proj && touch /v/proj/rootfile /v/ok && chown 1000:1000 /v /v/ok /v/proj",
    )
    shell(
        client,
        volume_name(ws.id, "workspace"),
        "chown 1000:1000 /v && ln -s /etc/shadow /v/link && chown -h 0:0 /v/link",
    )
    doctor = Doctor(service)
    found = verdicts(doctor.run("owners"))["ownership"]
    assert found[0] == "warn" and "2 entries not owned by UID 1000" in found[1]
    assert "/home/dev8/proj/rootfile" in found[1]
    fixed = verdicts(doctor.run("owners", fix=True))["ownership"]
    assert fixed[0] == "fixed"
    assert verdicts(doctor.run("owners"))["ownership"][0] == "ok"
    owners = shell(
        client, volume_name(ws.id, "workspace"), "stat -c %u /v/link; stat -L -c %u /etc/shadow"
    )
    assert owners.split() == [b"1000", b"0"]  # the link changed, never what it points at


def test_doctor_finds_a_bind_mounted_home(service, client, tmp_path):
    """The seed's "volume not persisting": a container made by hand with a bind mount."""
    ws = service.create(CreateRequest(name="bindhome"))
    service.provider.remove(ws.id)
    client.containers.create(
        ws.image_id,
        name=container_name(ws.id),
        labels={LABEL_OWNER: OWNER, LABEL_WORKSPACE_ID: ws.id, LABEL_ROLE: "container"},
        volumes={
            str(tmp_path): {"bind": "/home/dev8", "mode": "rw"},
            volume_name(ws.id, "workspace"): {"bind": "/workspace", "mode": "rw"},
        },
    )
    checks = verdicts(Doctor(service).run("bindhome"))
    assert checks["home mount"][0] == "fail"
    assert f"bind mount of {tmp_path}" in checks["home mount"][1]
    assert checks["workspace mount"][0] == "ok"
    assert checks["system mount"][0] == "fail"


def test_a_nearly_full_volume_is_reported_with_what_fills_it(service, client, monkeypatch):
    # Warn-only: an enforced 20 MiB file system holds less than 20 MiB (ext4's journal and
    # tables), and this is about measuring, not bounding.
    monkeypatch.setenv("DEV8_QUOTA_ENFORCE", "off")
    ws = service.create(CreateRequest(name="full", quotas={"workspace": 20 * MIB}))
    shell(
        client,
        volume_name(ws.id, "workspace"),
        "mkdir -p /v/build/cache && head -c 17000000 /dev/urandom > /v/build/cache/blob",
    )
    check = verdicts(Doctor(service).run("full"))["workspace quota"]
    assert check[0] == "warn", check
    assert "workspace 16.2 MiB of 20.0 MiB (81%)" in check[1]
    assert "/workspace/build/cache" in check[1]
    shell(client, volume_name(ws.id, "workspace"), "head -c 3000000 /dev/urandom > /v/more")
    assert verdicts(Doctor(service).run("full"))["workspace quota"][0] == "fail"


def test_quota_warnings_in_status_and_at_ssh_login(service, ssh_key, monkeypatch):
    """The agent measures, compares with the limits it was given and says so in its status
    and in the message printed at an interactive SSH login (warn-only quotas: an enforced
    10 MiB file system would be full before 95%)."""
    monkeypatch.setenv("DEV8_QUOTA_ENFORCE", "off")
    ws = service.up(
        CreateRequest(name="quotawarn", quotas={"home": 10 * MIB}, env={"DEV8_DISK_INTERVAL": "1"})
    )
    port = ws.ports["ssh"]
    ssh(port, ssh_key, "head -c 9500000 /dev/urandom > ~/fill.bin")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        warnings = service.agent_status("quotawarn")["warnings"]
        if any("home volume" in w for w in warnings):
            break
        time.sleep(0.5)
    assert any(w.startswith("home volume nearly full") for w in warnings), warnings
    disk = service.agent_status("quotawarn")["disk"]["home"]
    assert disk["quota_bytes"] == 10 * MIB and disk["quota_level"] in ("warning", "critical")
    login = ssh(port, ssh_key, "bash -lic true 2>/dev/null").stdout
    assert b"dev8: home volume" in login and b"cannot enforce" in login


def test_changing_a_quota_reaches_the_agent(service):
    service.up(CreateRequest(name="requota"))
    volumes = VolumeService(service)
    volumes.set_quotas("requota", {"home": 30 * 1024**3})
    assert service.find("requota").quotas == {"home": 30 * 1024**3}
    status = service.agent_status("requota")
    assert status["disk"]["home"]["quota_bytes"] == 30 * 1024**3
    assert service.get("requota").observed_state.value == "running"


def test_volume_listing_sizes_and_orphans(service, client, scratch_volumes):
    ws = service.create(CreateRequest(name="listed"))
    shell(client, volume_name(ws.id, "workspace"), "head -c 3000000 /dev/urandom > /v/data")
    orphan = scratch_volumes(
        "dev8-0rphan0000-home", **{LABEL_WORKSPACE_ID: "0rphan0000", LABEL_ROLE: "home"}
    )
    volumes = VolumeService(service)
    rows = {row.info.name: row for row in volumes.list()}
    mine = rows[volume_name(ws.id, "workspace")]
    assert mine.workspace == "listed" and mine.info.role == "workspace"
    assert 3_000_000 <= mine.size < 3_200_000 and mine.quota == 100 * 1024**3
    assert rows[orphan.name].orphan
    assert [row.info.name for row in volumes.list(orphans=True)] == [orphan.name]
    inspected = volumes.inspect("listed")
    assert sorted(row.info.role for row in inspected) == ["home", "system", "workspace"]


def test_du_shows_the_largest_directories(service, client):
    ws = service.create(CreateRequest(name="du"))
    shell(
        client,
        volume_name(ws.id, "workspace"),
        "mkdir -p /v/a/big /v/b && head -c 5000000 /dev/urandom > /v/a/big/f "
        "&& head -c 1000000 /dev/urandom > /v/b/g",
    )
    usages = {u.role: u for u in VolumeService(service).du("du", depth=2)}
    work = usages["workspace"]
    assert work.total >= 6_000_000
    assert [path for path, _ in work.largest][:2] == ["/workspace/a/big", "/workspace/b"]


@pytest.mark.parametrize("running", [True, False], ids=["running", "stopped"])
def test_clean_empties_the_package_caches(service, client, running):
    name = f"clean-{'up' if running else 'down'}"
    ws = (
        service.up(CreateRequest(name=name))
        if running
        else service.create(CreateRequest(name=name))
    )
    shell(
        client,
        volume_name(ws.id, "home"),
        "mkdir -p /v/.npm/_cacache /v/.cache/pip/http /v/.cargo/registry/cache/x "
        "&& head -c 2000000 /dev/urandom > /v/.npm/_cacache/a "
        "&& head -c 3000000 /dev/urandom > /v/.cache/pip/http/b "
        "&& head -c 1000000 /dev/urandom > /v/.cargo/registry/cache/x/c.crate "
        "&& echo keep > /v/.npmrc && chown -R 1000:1000 /v",
    )
    cleaned = {c.cache: c.reclaimed for c in VolumeService(service).clean(name)}
    assert cleaned["npm"] >= 2_000_000 and cleaned["pip"] >= 3_000_000
    assert cleaned["cargo"] >= 1_000_000 and cleaned["apt"] == 0
    left = shell(
        client,
        volume_name(ws.id, "home"),
        "find /v/.npm /v/.cache /v/.cargo -type f; cat /v/.npmrc",
    )
    assert left == b"keep\n"
