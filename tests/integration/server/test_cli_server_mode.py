"""The `dev8` command in server mode, as a user runs it (subprocesses with their own HOME
and data directory) against a real `dev8 server` process and the real engine: after
`dev8 login` the workspace commands go through the API with the same output as local mode;
`dev8 logout` returns to local mode."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import one_line_error
from tests.integration.owned import OWNER, remove_owned
from tests.integration.server.process import ADMIN_PASSWORD, ServerProcess

LOCAL_KEYS = {
    "id",
    "name",
    "owner",
    "image",
    "image_id",
    "cpus",
    "memory_mb",
    "desired_state",
    "state",
    "message",
    "ports",
    "ide_url",
    "env",
    "secret_names",
    "created_at",
    "updated_at",
}


@pytest.fixture
def server(tmp_path, client, workspace_image):
    process = ServerProcess(tmp_path / "server", admin_user=f"{OWNER}-cli").start()
    yield process
    process.stop()
    remove_owned(client, f"{OWNER}-cli")


def test_login_commands_through_the_server_and_logout(server, dev8, tmp_path):
    user = f"{OWNER}-cli"
    bad = dev8("login", server.url, "-u", user, "--password-stdin", input="wrong\n", check=False)
    assert "wrong user name or password" in one_line_error(bad)
    dev8("login", server.url, "-u", user, "--password-stdin", input=ADMIN_PASSWORD + "\n")
    login_file = dev8.data / "server.json"
    assert oct(login_file.stat().st_mode & 0o777) == "0o600"

    out = dev8(
        "up",
        "remote",
        "--idle-timeout",
        "45m",
        "--secret",
        "GITHUB_TOKEN=ghp_cli",
        "--home-quota",
        "30g",
    ).stdout
    assert "is running" in out and "dev8 ssh remote" in out
    listed = json.loads(dev8("ls", "--json").stdout)
    assert [(w["name"], w["state"], w["owner"]) for w in listed] == [("remote", "running", user)]
    assert set(listed[0]) >= LOCAL_KEYS and listed[0]["secret_names"] == ["GITHUB_TOKEN"]
    status = json.loads(dev8("status", "remote", "--json").stdout)
    assert status["agent"]["services"]["sshd"]["state"] == "running"
    assert "ghp_cli" not in json.dumps(status)
    assert status["agent"]["disk"]["home"]["quota_bytes"] == 30 * 1024**3  # sent to the server
    assert dev8("ssh", "remote", "--", "hostname").stdout.strip() == "remote"
    assert len(dev8("password", "remote").stdout.strip()) >= 20
    check_backups(dev8, tmp_path / "archives")
    dev8("stop", "remote")
    history = json.loads(dev8("history", "remote", "--json").stdout)
    assert [(h["action"], h["actor"], h["result"]) for h in history] == [
        ("stop", user, "succeeded"),
        ("snapshot", user, "succeeded"),
        ("restore", user, "succeeded"),
        ("backup", user, "succeeded"),
        ("start", user, "succeeded"),
        ("create", user, "succeeded"),
    ]
    assert "works in local mode only" in one_line_error(
        dev8("exec", "remote", "--", "true", check=False)
    )
    assert "no workspace named 'nosuch'" in one_line_error(dev8("start", "nosuch", check=False))
    gone = dev8("rm", "--purge", "--yes", "remote").stdout
    assert "destroyed 3 volume(s)" in gone

    assert "local mode" in dev8("logout").stdout
    assert not login_file.exists()
    assert json.loads(dev8("ls", "--json").stdout) == []  # the local store, empty
    with server.admin() as admin:
        cli_tokens = [t for t in admin.tokens.list() if t.attrs["name"].startswith("dev8 CLI")]
    assert len(cli_tokens) == 1 and cli_tokens[0].attrs["revoked_at"] is not None


def check_backups(dev8, archives):
    """`dev8 backup` makes the backup on the server, which keeps it, and downloads its
    archives here; `dev8 restore --from ID` restores a kept one; snapshots go through the
    server too; the commands that only make sense locally say so in one line."""
    archives.mkdir()
    out = dev8("backup", "remote", "--volume", "home", "-o", f"{archives}/").stdout
    assert "Backed up remote (1 volume(s))" in out and "The server keeps it as" in out
    [archive] = archives.iterdir()
    assert archive.name.startswith("remote-home-") and archive.name.endswith(".tar.zst")
    assert "matches the manifest" in dev8("verify", str(archive)).stdout
    [kept] = json.loads(dev8("backups", "remote", "--json").stdout)
    assert kept["id"] in out and [a["volume"] for a in kept["archives"]] == ["home"]
    assert kept["id"] in dev8("backups", "remote").stdout
    restored = dev8("restore", "remote", "--from", kept["id"], "--yes").stdout
    assert f"Restored home from backup {kept['id']} into remote" in restored
    assert "Snapshot" in dev8("snapshot", "create", "remote").stdout
    [snapshot] = json.loads(dev8("snapshot", "ls", "remote", "--json").stdout)
    assert sorted(snapshot["volumes"]) == ["home", "system", "workspace"]
    upload = dev8("restore", "remote", "--from", str(archive), "--yes", check=False)
    assert "the id of a backup the server keeps" in one_line_error(upload)
    for command in (["du", "remote"], ["doctor"], ["snapshot", "check"], ["clean", "remote"]):
        assert "works in local mode only" in one_line_error(dev8(*command, check=False))
