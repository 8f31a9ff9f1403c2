"""A home that survives on ACI: the real workspace image and its agent, the real restic, on
the real Docker engine.

Real: the image, the agent, restic, the container's own disk (overlay) as the home and
/workspace, containers removed and created anew from the image as ACI does at every stop and
start, SIGTERM with a grace (``docker stop``) and SIGKILL. Stand-in: the Azure Files shares
are a directory of this machine bind-mounted at ``DEV8_SYNC_ROOT`` (ext4 or whatever /tmp
is here, not SMB); restic's repository is plain files, which SMB stores as well. The
agent's recognition of an SMB mount is tested on mountinfo text (tests/unit/agent).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from docker.models.containers import Container

from dev8.core.naming import LABEL_OWNER
from tests.integration.helpers import ssh, wait_healthy
from tests.integration.owned import OWNER

TOKEN = "agent-token-for-sync-tests"
SYNC_ROOT = "/mnt/dev8-store"

WRITE_HOME = r"""
set -e
cd ~
python3 -m venv --without-pip venv
printf 'secret\n' > secret && chmod 600 secret
python3 -c "import sqlite3; c = sqlite3.connect('notes.db'); c.execute('create table t (x)');
c.execute(\"insert into t values ('kept')\"); c.commit()"
mkdir -p /workspace/repo && cd /workspace/repo && git init -q
printf 'target\n' > target.txt && ln -s target.txt link && printf '#!/bin/sh\necho ran\n' > run.sh
chmod 755 run.sh
git -c user.email=t@e -c user.name=t add -A && git -c user.email=t@e -c user.name=t commit -qm one
"""
CHECK_HOME = r"""
set -e
~/venv/bin/python -c 'import sys; assert sys.prefix.endswith("/venv")'
test -L ~/venv/bin/python
stat -c '%a %U' ~/secret
python3 -c "import sqlite3; c = sqlite3.connect('/home/dev8/notes.db');
print(c.execute('select x from t').fetchone()[0])"
cd /workspace/repo && test "$(readlink link)" = target.txt && ./run.sh
git status --porcelain --untracked-files=no | wc -l
"""


@pytest.fixture
def share(tmp_path: Path) -> Path:
    """The stand-in for the two Azure Files shares (one directory holding both)."""
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def workspaces(client: docker.DockerClient, workspace_image: str, ssh_key: Path) -> Iterator:
    """Run a workspace container as the ACI provider would: no volume at the home or at
    /workspace, the shares at ``DEV8_SYNC_ROOT``. Yields ``run(share) -> (container, port)``."""
    started: list[Container] = []

    def run(share: Path, wait: bool = True) -> tuple[Container, int]:
        container = client.containers.run(
            workspace_image,
            detach=True,
            environment={
                "DEV8_AGENT_TOKEN": TOKEN,
                "DEV8_SYNC_ROOT": SYNC_ROOT,
                "DEV8_SYNC_PASSWORD": "sync-password-for-tests",
                "DEV8_SYNC_INTERVAL_S": "10",
                "SSH_PUBLIC_KEY": ssh_key.with_suffix(".pub").read_text(),
            },
            volumes={str(share): {"bind": SYNC_ROOT, "mode": "rw"}},
            ports={"9000/tcp": ("127.0.0.1", None), "2222/tcp": ("127.0.0.1", None)},
            labels={LABEL_OWNER: OWNER},
        )
        started.append(container)
        port = agent_port(container)
        if wait:
            wait_healthy(port, timeout=180)
        return container, port

    yield run
    for container in started:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def agent_port(container: Container, port: str = "9000/tcp") -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        container.reload()
        bound = container.ports.get(port)
        if bound:
            return int(bound[0]["HostPort"])
        time.sleep(0.1)
    raise AssertionError("the agent's port was never published")


def status(port: int) -> dict:
    answer = httpx.get(
        f"http://127.0.0.1:{port}/status",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    return answer.json()


def as_dev8(container: Container, script: str) -> str:
    result = container.exec_run(["bash", "-c", script], user="dev8")
    output = result.output.decode()
    assert result.exit_code == 0, output
    return output


def wait_for_syncs(port: int, after: float, timeout: float = 180.0) -> dict:
    """The sync status once every tree has a sync that started after ``after``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trees = status(port)["sync"]["trees"]
        if all(
            tree["last_sync"] and tree["last_sync"]["finished_at"] - tree_duration(tree) > after
            for tree in trees.values()
        ):
            return trees
        time.sleep(0.5)
    raise AssertionError(f"no sync of every tree within {timeout} s: {trees}")


def tree_duration(tree: dict) -> float:
    return float(tree["last_sync"].get("duration_s") or 0.0)


def test_a_clean_stop_loses_nothing_and_a_new_container_gets_it_all_back(
    workspaces, share: Path, ssh_key: Path
) -> None:
    first, port = workspaces(share)
    before = status(port)
    assert before["filesystems"]["/home/dev8"] == "overlay"  # the container's own disk
    assert before["filesystems"][f"{SYNC_ROOT}/home"] not in ("cifs", "smb3", "unknown")
    assert not any("SMB" in warning for warning in before["warnings"])

    written = time.time()
    as_dev8(first, WRITE_HOME)
    wait_for_syncs(port, after=written)
    as_dev8(first, "echo after-the-last-sync > ~/late && echo late > /workspace/late")
    first.stop(timeout=60)  # SIGTERM, with a grace longer than the final sync
    assert "final sync done" in first.logs().decode()
    first.remove()

    second, port = workspaces(share)
    assert as_dev8(second, CHECK_HOME).split() == ["600", "dev8", "kept", "ran", "0"]
    assert as_dev8(second, "cat ~/late /workspace/late").split() == ["after-the-last-sync", "late"]
    assert as_dev8(second, "stat -c %u ~ ~/venv /workspace/repo/link").split() == ["1000"] * 3
    ssh_port = agent_port(second, "2222/tcp")
    assert ssh(ssh_port, ssh_key, "cat ~/late").stdout.strip() == b"after-the-last-sync"
    after = status(port)
    assert after["ssh_host_keys"] == before["ssh_host_keys"]  # the state rode along
    restored = after["sync"]["trees"]["home"]["restored"]
    assert restored["snapshot"] and after["sync"]["trees"]["home"]["restore_error"] is None
    # The next container syncs on top of the restored snapshot, its predecessor's locks gone.
    synced = wait_for_syncs(port, after=time.time())
    assert all(tree["last_error"] is None for tree in synced.values())


def test_a_kill_during_a_sync_loses_at_most_what_came_after_the_last_completed_one(
    workspaces, share: Path
) -> None:
    first, port = workspaces(share)
    written = time.time()
    as_dev8(first, "echo before > ~/before")
    wait_for_syncs(port, after=written)
    # Enough incompressible data that the next sync is still running when it is killed.
    late = time.time()
    as_dev8(
        first,
        "head -c 150000000 /dev/urandom > ~/big.tmp && (cd ~ && sha256sum big.tmp) > ~/sum.tmp"
        " && mv ~/big.tmp ~/big && sed s/big.tmp/big/ ~/sum.tmp > ~/big.sum",
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        home = status(port)["sync"]["trees"]["home"]
        if home["syncing"] and home["last_attempt_at"] > late:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("never saw the sync of the big file running")
    first.kill()  # SIGKILL: no final sync
    first.remove()

    second, port = workspaces(share)
    assert as_dev8(second, "cat ~/before").strip() == "before"
    # A file caught while being written may come back half written (the next sync would have
    # caught it whole); one renamed into place comes back whole or not at all.
    if "big.sum" in as_dev8(second, "ls ~").split():  # the killed sync had just completed
        assert as_dev8(second, "cd ~ && sha256sum -c big.sum").strip().endswith("OK")
    home = status(port)["sync"]["trees"]["home"]
    assert home["restore_error"] is None and home["restored"]["snapshot"]
    synced = wait_for_syncs(port, after=time.time())  # the killed restic's lock is no obstacle
    assert all(tree["last_error"] is None for tree in synced.values())

    # A stop that first asks for a sync and waits for it loses nothing, even to SIGKILL.
    as_dev8(second, "echo asked > ~/asked")
    answer = httpx.post(
        f"http://127.0.0.1:{port}/sync", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
    )
    assert answer.status_code == 200
    assert all(tree["last_error"] is None for tree in answer.json()["trees"].values())
    second.kill()
    second.remove()
    third, _ = workspaces(share)
    assert as_dev8(third, "cat ~/asked").strip() == "asked"


def test_a_restore_cut_short_is_done_again_and_never_synced_over_the_snapshot(
    workspaces, share: Path
) -> None:
    """A container restarted on the same disk (the marker's case): killed while it
    restores, started again, it restores the whole snapshot before anything is synced."""
    first, port = workspaces(share)
    written = time.time()
    as_dev8(first, "cd ~ && head -c 120000000 /dev/urandom > big && sha256sum big > big.sum")
    wait_for_syncs(port, after=written)
    first.stop(timeout=60)
    first.remove()

    second, port = workspaces(share, wait=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        except httpx.HTTPError:
            health = {}
        if "restoring /home/dev8" in health.get("reason", ""):
            break
        time.sleep(0.02)
    else:
        raise AssertionError("never saw the home being restored")
    second.kill()
    second.start()
    port = agent_port(second)
    wait_healthy(port, timeout=180)
    assert as_dev8(second, "cd ~ && sha256sum -c big.sum").strip().endswith("OK")
    assert ".dev8-sync-restore" not in as_dev8(second, "ls -A ~").split()
    home = status(port)["sync"]["trees"]["home"]
    assert home["restore_error"] is None and home["restored"]["snapshot"]


def test_apt_packages_come_back_in_a_new_container_from_the_synced_cache(
    workspaces, share: Path
) -> None:
    """On ACI every start is a rebuild: the package record and its cache ride along in the
    synced home (/home/dev8/.dev8-system), and the usual package restore installs from them.
    Needs the Debian mirror once, for the first install (as tests/integration/service's)."""
    first, port = workspaces(share)
    result = first.exec_run(
        ["bash", "-c", "apt-get update -q && apt-get install -y -q sl"], user="root"
    )
    assert result.exit_code == 0, result.output.decode()[-2000:]
    answer = httpx.post(
        f"http://127.0.0.1:{port}/sync", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300
    )
    assert answer.status_code == 200
    first.kill()
    first.remove()

    second, port = workspaces(share)
    packages = status(port)["packages"]
    assert packages["restore"]["status"] == "complete", packages
    assert packages["restore"]["offline"] == ["sl"]  # from the cache that rode along
    assert as_dev8(second, "test -x /usr/games/sl && echo ok").strip() == "ok"
