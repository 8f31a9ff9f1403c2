"""SSH keys changed after a workspace was created, against the real engine, image, agent and
sshd, through a real `dev8 server`: a key added on the account works at once in the running
workspace, a key removed stops working at once, and a restart keeps the account's keys (not
the ones the container was created with)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dev8.core.images import workspace_image
from dev8.providers.base import PORTS
from tests.integration.helpers import forwarded, ssh
from tests.integration.owned import OWNER, remove_owned
from tests.integration.server.process import ServerProcess


@pytest.fixture
def server(tmp_path, client, workspace_image):
    process = ServerProcess(tmp_path).start()
    yield process
    process.stop()


def new_key(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def public(key: Path) -> str:
    return key.with_suffix(".pub").read_text().strip()


def can_log_in(workspace, key: Path) -> bool:
    with forwarded(workspace, PORTS["ssh"]) as port:
        result = ssh(port, key, "id -un", check=False)
    if result.returncode == 0:
        assert result.stdout.strip() == b"dev8"
        return True
    assert b"Permission denied" in result.stderr, result.stderr
    return False


def test_keys_changed_on_the_account_count_at_once_and_after_a_restart(server, client, tmp_path):
    owner = f"{OWNER}-keys"
    laptop, desktop = new_key(tmp_path, "laptop"), new_key(tmp_path, "desktop")
    try:
        me = server.user(owner, public(laptop))
        workspace = me.workspaces.create("keys", image=workspace_image()).wait()
        assert can_log_in(workspace, laptop) and not can_log_in(workspace, desktop)

        me.users.me().update(ssh_keys=f"{public(laptop)}\n{public(desktop)}\n")
        assert can_log_in(workspace, desktop)

        me.users.me().update(ssh_keys=public(desktop))
        assert not can_log_in(workspace, laptop)

        restarted = workspace.restart().wait()
        assert can_log_in(restarted, desktop) and not can_log_in(restarted, laptop)
    finally:
        server.stop()
        remove_owned(client, owner)
