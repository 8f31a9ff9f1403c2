"""The seed document's own way of running a workspace, its commands verbatim, against the real
engine, Compose (Debian's docker-compose, or the v2 plugin where present), sshd and the
Debian mirror.

Adapted, and only these: the image names (``ubuntu`` becomes dev8's base image, which has
tar: no registry is reachable here; ``dev8registry.azurecr.io/dev8-workspace`` becomes a
locally built image), the published ports (free ones on 127.0.0.1, not 8080/2222/9000 on
every interface), and ``logs -f`` read once the services are up instead of followed.
The names are the seed's own (container ``dev8-workspace``; volumes ``docker_dev8-home``,
``docker_workspace``, ``user-home``, ``workspace-data``): a test refuses to run where they
already exist, so that it never touches anyone's data.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from dev8.core.images import helper_image
from dev8.core.naming import LABEL_OWNER
from tests.integration.backup.helpers import listing
from tests.integration.helpers import host_key_fingerprints, ssh, wait_healthy
from tests.integration.owned import OWNER
from tests.net import free_port

REPOSITORY = Path(__file__).resolve().parents[3]
CONTAINER = "dev8-workspace"
COMPOSE_VOLUMES = ("docker_dev8-home", "docker_workspace")
SEED_ARCHIVES = {"docker_dev8-home": "dev8-home-backup", "docker_workspace": "workspace-backup"}
RUN_VOLUMES = ("user-home", "workspace-data")
SYSTEM_VOLUME = "dev8-seed-test-system"  # the third volume a workspace may get later
# What a user does inside: a package, files in both volumes, git and editor settings.
USE_IT = """
set -e
sudo apt-get update -q >/dev/null
sudo apt install -y -q cowsay >/dev/null
echo notes > ~/notes.txt
mkdir -p /workspace/project && echo 'print(42)' > /workspace/project/main.py
git config --global user.name 'Seed User'
mkdir -p ~/.local/share/code-server/User
echo '{"editor.fontSize": 17}' > ~/.local/share/code-server/User/settings.json
"""
CHECK_IT = """
/usr/games/cowsay moo
cat ~/notes.txt /workspace/project/main.py ~/.local/share/code-server/User/settings.json
git config --global user.name
cat /etc/dev8-test-revision 2>/dev/null || echo no revision
"""
HOST_KEY = "cat /var/lib/dev8/ssh/ssh_host_ed25519_key.pub"


def kept_everything(output: str) -> bool:
    return all(
        part in output
        for part in ("< moo >", "notes", "print(42)", '"editor.fontSize": 17', "Seed User")
    )


@pytest.fixture
def seed_names(client: docker.DockerClient) -> Iterator[None]:
    """The seed's names are free before the test, and removed after it."""
    names = (*COMPOSE_VOLUMES, *RUN_VOLUMES, SYSTEM_VOLUME)
    taken = [n for n in names if _exists(client.volumes, n)]
    taken += [CONTAINER] if _exists(client.containers, CONTAINER) else []
    if taken:
        pytest.fail(f"{', '.join(taken)} exist on this engine: the seed's tests would use them")
    yield
    for name in names:
        for container in client.containers.list(all=True, filters={"volume": name}):
            container.remove(force=True)
        if _exists(client.volumes, name):
            client.volumes.get(name).remove(force=True)


def _exists(collection: object, name: str) -> bool:
    try:
        collection.get(name)  # type: ignore[attr-defined]
    except docker.errors.NotFound:
        return False
    return True


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return ["docker", "compose"]


@pytest.fixture
def compose(
    tmp_path: Path, workspace_image: str, seed_names: None, ssh_key: Path
) -> Iterator[tuple[Callable[..., str], dict[str, str]]]:
    """``docker-compose ARGS`` run from a copy of the repository's docker/ folder (the
    project is named after the folder, so the volumes are the seed's ``docker_*``)."""
    folder = tmp_path / "docker"
    shutil.copytree(REPOSITORY / "docker", folder)
    ports = {
        "DEV8_IDE_PORT": str(free_port()),
        "DEV8_SSH_PORT": str(free_port()),
        "DEV8_AGENT_PORT": str(free_port()),
    }
    env = {
        **os.environ,
        **ports,
        "CODE_SERVER_PASSWORD": "mypassword",
        "ENVIRONMENT_ID": "user-workspace-001",
        "SSH_PUBLIC_KEY": ssh_key.with_suffix(".pub").read_text().strip(),
    }

    def run(*args: str) -> str:
        result = subprocess.run(
            [*compose_command(), *args],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"compose {args}: {result.stderr}"
        return result.stdout + result.stderr

    try:
        yield run, ports
    finally:
        subprocess.run([*compose_command(), "down", "-v"], cwd=folder, env=env, capture_output=True)


def test_compose_keeps_everything_across_down_and_a_rebuilt_image(
    compose: tuple[Callable[..., str], dict[str, str]],
    client: docker.DockerClient,
    ssh_key: Path,
    tmp_path: Path,
) -> None:
    run, ports = compose
    agent, ssh_port = int(ports["DEV8_AGENT_PORT"]), int(ports["DEV8_SSH_PORT"])
    run("up", "-d")
    wait_healthy(agent, timeout=180)
    logs = run("logs", "workspace")
    assert "started sshd" in logs and "started code-server" in logs
    ssh(ssh_port, ssh_key, USE_IT)
    identity = host_key_fingerprints(ssh_port)
    assert identity

    run("down")
    assert not _exists(client.containers, CONTAINER)
    (tmp_path / "docker" / "Dockerfile").open("a").write("RUN echo v2 > /etc/dev8-test-revision\n")
    run("up", "-d", "--build", "workspace")
    wait_healthy(agent, timeout=180)  # the packages are back before it says healthy
    after = ssh(ssh_port, ssh_key, CHECK_IT).stdout.decode()
    assert "v2" in after, "the container does not run the rebuilt image"
    assert kept_everything(after), after
    assert host_key_fingerprints(ssh_port) == identity

    # The seed's "Backup Volume" and "Restore Volume", byte for byte, into fresh volumes.
    run("down")
    before = {volume: listing(client, volume) for volume in COMPOSE_VOLUMES}
    backups = tmp_path / "backups"
    backups.mkdir()
    for volume, archive in SEED_ARCHIVES.items():
        _seed_tar(backups, f"{volume}:/source:ro", "czf", f"/backup/{archive}.tar.gz", "/source")
    run("down", "-v")
    assert not any(_exists(client.volumes, volume) for volume in COMPOSE_VOLUMES)
    for volume, archive in SEED_ARCHIVES.items():
        _seed_tar(backups, f"{volume}:/target", "xzf", f"/backup/{archive}.tar.gz", "/target")
    for volume, entries in before.items():
        restored, kept = as_tar_keeps(listing(client, volume)), as_tar_keeps(entries)
        differing = sorted(
            p for p in restored.keys() | kept.keys() if restored.get(p) != kept.get(p)
        )
        assert not differing, (
            f"{volume}: {[(p, kept.get(p), restored.get(p)) for p in differing[:5]]}"
        )
    run("up", "-d")
    wait_healthy(agent, timeout=180)
    assert kept_everything(ssh(ssh_port, ssh_key, CHECK_IT).stdout.decode())
    assert host_key_fingerprints(ssh_port) == identity


def as_tar_keeps(entries: dict[str, dict]) -> dict[str, dict]:
    """A listing as the seed's tar keeps it: whole seconds (GNU format), holes written as
    zeros, no sockets (tar says "socket ignored": code-server's IPC socket is left behind
    when it is stopped before it removes it, and made anew at its start); every byte, name,
    mode, owner, link and hard link is compared."""
    return {
        path: {
            **{key: value for key, value in entry.items() if key != "sparse"},
            "mtime_ns": entry["mtime_ns"] // 10**9,
        }
        for path, entry in entries.items()
        if not stat.S_ISSOCK(entry["mode"])
    }


def _seed_tar(backups: Path, volume: str, mode: str, archive: str, directory: str) -> None:
    """The seed's ``docker run --rm -v VOLUME -v $(pwd):/backup ubuntu tar ...``."""
    subprocess.run(
        [
            "docker", "run", "--rm",
            "-v", volume,
            "-v", f"{backups}:/backup",
            helper_image(),
            "tar", mode, archive, "-C", directory, *(["."] if mode == "czf" else []),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip


def in_container(container: str, script: str, user: str = "dev8") -> str:
    result = subprocess.run(
        ["docker", "exec", "-u", user, container, "bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{script!r} in {container}: {result.stderr}"
    return result.stdout


def wait_agent_healthy(container: str, timeout: float = 180.0) -> None:
    """For a container published on no port (the seed's Scenario 2): ask from inside."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["docker", "exec", container, "curl", "-fsS", "http://127.0.0.1:9000/health"],
            capture_output=True,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"{container}'s agent not healthy within {timeout} s")


@pytest.fixture
def changed_image(client: docker.DockerClient, workspace_image: str) -> str:
    """The seed's 'new image' (it pulls one from a registry): dev8's image plus a change."""
    dockerfile = f"FROM {workspace_image}\nRUN echo v2 > /etc/dev8-test-revision\n"
    image, _ = client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), labels={LABEL_OWNER: OWNER}, rm=True
    )
    return str(image.id)


def test_docker_run_restart_and_scenario_2_keep_everything(
    seed_names: None, workspace_image: str, changed_image: str, client: docker.DockerClient
) -> None:
    ide = free_port()
    subprocess.run(
        [
            "docker", "run", "-d",
            "-p", f"127.0.0.1:{ide}:8080", "-p", f"127.0.0.1:{free_port()}:2222",
            "-p", f"127.0.0.1:{free_port()}:9000",
            "-e", "GITHUB_TOKEN=your_token",
            "-e", "ENVIRONMENT_ID=user-workspace-001",
            "-e", "CODE_SERVER_PASSWORD=mypassword",
            "-v", "workspace-data:/workspace",
            "-v", "user-home:/home/dev8",
            "--name", "dev8-workspace",
            workspace_image,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    wait_agent_healthy(CONTAINER)
    login = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-d", "password=mypassword",
         f"http://127.0.0.1:{ide}/login"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert login.stdout == "302", "the IDE does not take CODE_SERVER_PASSWORD"
    in_container(CONTAINER, USE_IT)
    host_key = in_container(CONTAINER, HOST_KEY, user="root")

    # Scenario 1: docker restart.
    subprocess.run(["docker", "restart", "dev8-workspace"], check=True, capture_output=True)
    wait_agent_healthy(CONTAINER)
    assert kept_everything(in_container(CONTAINER, CHECK_IT))

    # Scenario 2: stop, remove, run the new image on the same two volumes.
    subprocess.run(["docker", "stop", "dev8-workspace"], check=True, capture_output=True)
    subprocess.run(["docker", "rm", "dev8-workspace"], check=True, capture_output=True)
    updated = subprocess.run(
        [
            "docker", "run", "-d",
            "-v", "user-home:/home/dev8",
            "-v", "workspace-data:/workspace",
            "--label", f"{LABEL_OWNER}={OWNER}",
            changed_image,
        ],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    wait_agent_healthy(updated)
    after = in_container(updated, CHECK_IT)
    assert "v2" in after and kept_everything(after), after
    assert in_container(updated, HOST_KEY, user="root") == host_key
    assert "not a volume" not in _logs(updated)

    # Later the workspace gets a volume of its own for its state: moved there once.
    subprocess.run(["docker", "rm", "-f", updated], check=True, capture_output=True)
    system = SYSTEM_VOLUME
    third = subprocess.run(
        [
            "docker", "run", "-d",
            "-v", "user-home:/home/dev8", "-v", "workspace-data:/workspace",
            "-v", f"{system}:/var/lib/dev8",
            "--label", f"{LABEL_OWNER}={OWNER}",
            changed_image,
        ],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    wait_agent_healthy(third)
    assert kept_everything(in_container(third, CHECK_IT))
    assert in_container(third, HOST_KEY, user="root") == host_key
    mounted = in_container(third, "mountpoint /var/lib/dev8").strip()
    assert mounted == "/var/lib/dev8 is a mountpoint"
    assert ".dev8-system" not in in_container(third, "ls -A ~").split()


def _logs(container: str) -> str:
    result = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    return result.stdout + result.stderr


def test_the_image_runs_a_command_it_is_given(workspace_image: str) -> None:
    """``docker run --rm IMAGE CMD`` runs CMD and exits with its status (no agent)."""
    user = subprocess.run(
        ["docker", "run", "--rm", workspace_image, "id", "-u"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (user.returncode, user.stdout) == (0, "0\n")
    failing = subprocess.run(
        ["docker", "run", "--rm", workspace_image, "sh", "-c", "exit 3"], timeout=60
    )
    assert failing.returncode == 3
