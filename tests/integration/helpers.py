"""Talking to workspaces in tests the way users do: the OpenSSH client, HTTP, the `dev8`
command's output."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from dev8.cli.relay import pump

SSH_OPTIONS = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "LogLevel=ERROR",
]


def ssh(
    port: int,
    key: Path,
    command: str,
    user: str = "dev8",
    stdin: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        ["ssh", *SSH_OPTIONS, "-i", str(key), "-p", str(port), f"{user}@127.0.0.1", command],
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"ssh {command!r} exited {result.returncode}: {result.stderr.decode()}"
        )
    return result


def host_key_fingerprints(port: int) -> set[str]:
    scan = subprocess.run(
        ["ssh-keyscan", "-p", str(port), "127.0.0.1"], capture_output=True, text=True, timeout=30
    )
    return {
        " ".join(line.split()[1:3])
        for line in scan.stdout.splitlines()
        if line and not line.startswith("#")
    }


def wait_healthy(agent_port: int, timeout: float = 60.0) -> float:
    """Seconds until the agent's /health answered 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"http://127.0.0.1:{agent_port}/health", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"agent on port {agent_port} not healthy within {timeout} s")


@contextlib.contextmanager
def forwarded(workspace: Any, port: int) -> Iterator[int]:
    """A local port relayed to ``port`` inside a server-mode ``workspace`` (an SDK
    ``Workspace``) through the server's tunnel, as `dev8 port-forward` does: a relayed
    workspace publishes nothing but its agent."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the block is over
                return
            stream = workspace.open_tunnel(port)
            threading.Thread(target=pump, args=(connection, stream, print), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


class Payload:
    """Files written through SSH as dev8 and checked byte for byte later."""

    def __init__(self, seed: str) -> None:
        digest = hashlib.sha256(seed.encode()).digest()
        blob = (digest * (2**20 // len(digest) + 1))[: 2**20 + 7]  # 1 MiB + 7 bytes
        self.files = {
            "/home/dev8/.dotfile-"
            + seed: f"export FROM_{seed.upper().replace('-', '_')}=1\n".encode(),
            "/home/dev8/notes/ünïcode name " + seed + ".txt": ("héllo " * 100).encode(),
            "/workspace/project-" + seed + "/data.bin": blob,
        }

    def write(self, port: int, key: Path) -> None:
        for path, data in self.files.items():
            parent = path.rsplit("/", 1)[0]
            ssh(port, key, f"mkdir -p '{parent}' && cat > '{path}'", stdin=data)

    def check(self, port: int, key: Path) -> None:
        for path, data in self.files.items():
            got = ssh(port, key, f"cat '{path}'").stdout
            assert got == data, f"{path}: {len(got)} bytes differ from the {len(data)} written"
        owners = ssh(port, key, "stat -c %u " + " ".join(f"'{p}'" for p in self.files)).stdout
        assert set(owners.split()) == {b"1000"}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed `dev8` command printed: no traceback, nothing else."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def interruptible() -> None:
    """``preexec_fn`` for a command a test stops with SIGINT (Ctrl-C): a test run started in
    the background (``cmd &``) ignores SIGINT, its children inherit that, and Python then
    never turns SIGINT into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def quota_enforcement_here() -> str:
    """What the Docker provider says of quota enforcement on this host with this
    environment: "enforced (loop ext4)..." where the host can, else "warn only (...)"."""
    import os

    from dev8.providers.docker.loopquota import decide, host_facts, setting_mode

    return decide(setting_mode(os.environ), host_facts(local_engine=True)).describe()
