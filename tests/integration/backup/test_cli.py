"""The backup, restore, snapshot, volume, quota, clean and doctor commands as users run them."""

from __future__ import annotations

import json

import pytest

from tests.integration.backup.conftest import one_line_error
from tests.integration.helpers import quota_enforcement_here


def test_backup_of_a_running_workspace_warns_and_stop_restarts_it(dev8, tmp_path):
    dev8("up", "clibk", "--home-quota", "30g")
    live = dev8("backup", "clibk", "--volume", "home", "-o", f"{tmp_path}/")
    assert "crash-consistent" in live.stderr
    assert "clibk-home-" in live.stdout and "✓ Backed up clibk (1 volume(s))" in live.stdout
    stopped = dev8("backup", "clibk", "--stop", "-o", f"{tmp_path}/stopped/", check=False)
    assert "does not exist" in one_line_error(stopped)
    (tmp_path / "stopped").mkdir()
    consistent = dev8("backup", "clibk", "--stop", "-o", f"{tmp_path}/stopped/", "--json")
    assert "crash-consistent" not in consistent.stderr
    archives = json.loads(consistent.stdout)
    assert sorted(a["manifest"]["volume"] for a in archives) == ["home", "system", "workspace"]
    assert not any(a["manifest"]["crash_consistent"] for a in archives)
    status = json.loads(dev8("status", "clibk", "--json").stdout)
    assert status["state"] == "running"
    assert status["quotas"]["home"] == 30 * 1024**3
    actions = [op["action"] for op in json.loads(dev8("history", "clibk", "--json").stdout)]
    # Bad input is refused before anything starts: it is not an operation.
    assert actions == ["backup", "backup", "start", "create"]

    home = next(a["path"] for a in archives if a["manifest"]["volume"] == "home")
    verified = json.loads(dev8("verify", home, "--json").stdout)
    assert verified["manifest"]["workspace_name"] == "clibk"
    assert verified["check"]["sha256"] == verified["manifest"]["archive_sha256"]
    restored = dev8("restore", "clibk", "--from", home, "--as", "clibk2")
    assert "Created workspace clibk2" in restored.stdout
    assert json.loads(dev8("status", "clibk2", "--json").stdout)["quotas"]["home"] == 30 * 1024**3


def test_status_ls_and_volume_ls_show_usage(dev8):
    dev8("up", "cliuse")
    status = json.loads(dev8("status", "cliuse", "--json").stdout)
    assert set(status["disk"]) == {"home", "workspace"}
    assert status["disk"]["home"]["quota_bytes"] == 20 * 1024**3
    listed = dev8("ls").stdout
    assert "DISK" in listed and "home 0%" in listed
    volumes = json.loads(dev8("volume", "ls", "--json").stdout)
    assert {v["role"] for v in volumes if v["workspace"] == "cliuse"} == {
        "home",
        "workspace",
        "system",
    }
    assert "dev8 du" not in dev8("du", "cliuse").stderr
    quota = dev8("quota", "cliuse", "--workspace", "150g")
    assert "150.0 GiB" in quota.stdout and "cannot enforce" in quota.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["backup", "nope"], "no workspace named 'nope'"),
        (["backup", "clierr", "--volume", "etc"], "unknown volume 'etc'"),
        (["backup", "clierr", "--format", "zip"], "unknown format 'zip'"),
        (["restore", "clierr", "--from", "/nonexistent.tar.zst", "--as", "x"], "cannot read"),
        (["restore", "clierr", "--from", "/etc/hostname"], "confirm with --yes"),
        (["verify", "/etc/hostname"], "not a tar archive"),
        (["quota", "clierr", "--home", "12x"], "invalid size '12x'"),
        (["quota", "clierr", "--home", "10k"], "below the 1 MiB minimum"),
        (["up", "clierr2", "--workspace-quota", "lots"], "invalid size 'lots'"),
        (["snapshot", "restore", "clierr", "beef", "--yes"], "no snapshot 'beef' of clierr"),
        (["snapshot", "rm", "clierr"], "not both"),
        (["du", "nope"], "no workspace named 'nope'"),
        (["volume", "inspect", "nope"], "no dev8 volume or workspace named 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(dev8, args, message):
    dev8("create", "clierr")
    before = json.loads(dev8("volume", "ls", "--json").stdout)
    assert message in one_line_error(dev8(*args, check=False))
    assert json.loads(dev8("volume", "ls", "--json").stdout) == before
    assert [ws["name"] for ws in json.loads(dev8("ls", "--json").stdout)] == ["clierr"]


def test_doctor_command(dev8):
    dev8("create", "clidoc")
    result = dev8("doctor", "clidoc")
    enforcement = quota_enforcement_here()
    assert "quota enforcement" in result.stdout and enforcement[:30] in result.stdout
    checks = json.loads(dev8("doctor", "clidoc", "--json").stdout)
    assert {c["name"]: c["verdict"] for c in checks}["ownership"] == "ok"
