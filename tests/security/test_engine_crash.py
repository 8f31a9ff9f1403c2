"""Issue 16, item 14: a running workspace comes back after the engine crashes; a stopped one
stays stopped.

Before, workspace containers had the restart policy ``unless-stopped``: a ``dockerd`` killed
with SIGKILL and started again (no live-restore) stops the containers it finds still running
as if by hand, and ``unless-stopped`` then never starts them (a running workspace stayed
exited, code 0, 0 restarts). Now the provider records the desired state on the engine at
each start (``always``) and stop (``no``).

This test restarts an engine, but not the machine's: it starts a private ``dockerd`` of its
own (the same binary, started the way ``dev8 engine ensure`` starts it, with its own managed
containerd, data root and socket; no bridge, no iptables, so it touches neither the
machine's engine nor its network), kills it with SIGKILL and starts it again. The workspace
containers are built by ``container_spec`` and started and stopped by ``DockerProvider``;
stand-ins: their image is a few MB of ``sh`` and ``sleep`` that exits 0 on SIGTERM as the
agent does, and they have no network (``none``) instead of a bridge of their own. A
container with the old policy is the control: it must stay down, as workspaces did.
Opt in with DEV8_TEST_ENGINE_CRASH=1 (root, ``dockerd`` installed; about 12 s).

In server mode the reconciler is the second way back (and the only one for a container that
still has the old policy until its next start): the last test, on the real server with the
fake provider, checks that it starts a running workspace it finds exited and leaves a
stopped one alone. It passed before this fix too: it guards the reconciler's part.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from dev8.core.naming import container_name
from dev8.core.resources import PRESETS
from dev8.core.states import ContainerState
from dev8.providers.base import WorkspaceSpec
from dev8.providers.docker.provider import DockerProvider
from dev8.providers.docker.specs import container_spec
from tests.databases import sqlite_url
from tests.fakes import FakeAgent, FakeProvider
from tests.integration.server.live import Api, create, serving, wait_for

engine_crash = pytest.mark.skipif(
    os.environ.get("DEV8_TEST_ENGINE_CRASH") != "1" or shutil.which("dockerd") is None,
    reason="starts and SIGKILLs a private dockerd: set DEV8_TEST_ENGINE_CRASH=1 (root)",
)
STAND_IN = "dev8-test/stand-in:latest"
# The agent's way with SIGTERM: end cleanly, exit code 0.
STAND_IN_CMD = '["/bin/sh", "-c", "trap \\"exit 0\\" TERM; while :; do sleep 1 & wait $!; done"]'
CGROUP_PARENT = "/dev8-crash-test"
ENGINE_S = 90.0  # a bound for an engine to start, not a benchmark
ROOTFS = ("/bin/dash", "/usr/bin/sleep", "/lib/x86_64-linux-gnu/libc.so.6")


class PrivateEngine:
    """A dockerd of the test's own under ``root``; ``crash`` kills it with SIGKILL."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = f"unix://{root}/docker.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> docker.DockerClient:
        # In a network namespace of its own: a dockerd with --bridge=none deletes the host's
        # docker0 at start (libnetwork's removeDefaultBridgeInterface), cutting off the
        # machine's engine's containers.
        argv = [
            "unshare",
            "--net",
            "dockerd",
            f"--data-root={self.root}/data",
            f"--exec-root={self.root}/exec",
            f"--pidfile={self.root}/docker.pid",
            f"--host={self.socket}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            f"--cgroup-parent={CGROUP_PARENT}",
        ]
        with (self.root / "dockerd.log").open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
            )
        clients: list[docker.DockerClient] = []
        wait_for(lambda: self._answers(clients), ENGINE_S, "an answer of the private dockerd")
        return clients[0]

    def _answers(self, clients: list[docker.DockerClient]) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            tail = (self.root / "dockerd.log").read_text(errors="replace").splitlines()[-3:]
            raise AssertionError(f"dockerd exited: {tail}")
        with contextlib.suppress(docker.errors.DockerException):
            clients.append(docker.DockerClient(base_url=self.socket, version="auto", timeout=60))
        return bool(clients)

    def crash(self) -> None:
        """SIGKILL dockerd; return once the containerd it ran is gone too (it dies at its next
        log line into the broken pipe, and while a zombie it makes the next dockerd wait for
        it in vain), or still serves after a few seconds."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        containerd = _pid(self.exec_root / "containerd/containerd.pid")
        socket_path = self.exec_root / "containerd/containerd.sock"
        survived = time.monotonic() + 5

        def settled() -> bool:
            state = _state(containerd) if containerd else ""
            if state == "":
                return True
            return state != "Z" and time.monotonic() > survived and _serves(socket_path)

        wait_for(settled, ENGINE_S, "containerd gone or serving")

    def restart(self) -> docker.DockerClient:
        """Stop dockerd the way a host shutdown does (SIGTERM) and start it again."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        return self.start()

    def stop(self) -> None:
        """Stop dockerd cleanly (it stops its containers); then end what it left running:
        its containerd, shims and their containers (all found by this engine's root)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
        ours = [pid for pid in _pids() if str(self.root) in _cmdline(pid)]
        children = [pid for pid in _pids() if _parent(pid) in ours]
        for pid in [*children, *ours]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return []


def _state(pid: int) -> str:
    """The process's state letter (Z: a zombie), "" when it is gone."""
    fields = _stat(pid)
    return fields[0] if fields else ""


def _parent(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[1]) if fields else 0


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    return ""


def _serves(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as sock, contextlib.suppress(OSError):
        sock.connect(str(path))
        return True
    return False


def _pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None


def stand_in_rootfs() -> bytes:
    """A tar of sh and sleep with the libraries they load (Debian's amd64 layout)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in (*ROOTFS, os.path.realpath("/lib64/ld-linux-x86-64.so.2")):
            tar.add(path, arcname=path.lstrip("/"))
        link = tarfile.TarInfo("lib64/ld-linux-x86-64.so.2")
        link.type, link.linkname = tarfile.SYMTYPE, os.path.realpath("/lib64/ld-linux-x86-64.so.2")
        tar.addfile(link)
        sh = tarfile.TarInfo("bin/sh")
        sh.type, sh.linkname = tarfile.SYMTYPE, "dash"
        tar.addfile(sh)
    return buffer.getvalue()


@pytest.fixture
def engine() -> Iterator[tuple[PrivateEngine, docker.DockerClient]]:
    root = Path(tempfile.mkdtemp(prefix="dev8-crash-", dir="/var/tmp"))
    private = PrivateEngine(root)
    try:
        client = private.start()
        client.api.import_image_from_data(
            stand_in_rootfs(), repository=STAND_IN, changes=[f"CMD {STAND_IN_CMD}"]
        )
        yield private, client
    finally:
        private.stop()
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
        for group in Path("/sys/fs/cgroup").glob(f"*{CGROUP_PARENT}"):  # one per controller
            for leaf in [*(d for d in group.iterdir() if d.is_dir()), group]:
                with contextlib.suppress(OSError):
                    leaf.rmdir()


def create_container(
    client: docker.DockerClient, workspace_id: str, policy: dict | None = None
) -> None:
    """A workspace container as ``DockerProvider.create`` makes it, on the stand-ins."""
    spec = WorkspaceSpec(workspace_id, workspace_id, "alice", STAND_IN, PRESETS["small"])
    kwargs = {**container_spec(replace(spec, published=())), "network_mode": "none"}
    if policy is not None:
        kwargs["restart_policy"] = policy
    client.containers.create(**kwargs)


def state(client: docker.DockerClient, workspace_id: str) -> dict:
    return client.containers.get(container_name(workspace_id)).attrs["State"]


@pytest.mark.engine
@engine_crash
def test_a_running_workspace_comes_back_after_an_engine_crash_and_a_stopped_one_does_not(engine):
    private, client = engine
    provider = DockerProvider(client)
    create_container(client, "runningcrash")
    create_container(client, "stoppedcrash")
    create_container(client, "controlcrash", policy={"Name": "unless-stopped"})  # the policy before
    provider.start("runningcrash")
    provider.start("stoppedcrash")
    provider.stop("stoppedcrash", timeout=5)
    client.containers.get(container_name("controlcrash")).start()
    assert [state(client, w)["Running"] for w in ("runningcrash", "controlcrash")] == [True] * 2

    crashed_at = time.monotonic()
    private.crash()
    client = private.start()

    wait_for(lambda: state(client, "runningcrash")["Running"], ENGINE_S, "workspace back")
    back_s = time.monotonic() - crashed_at
    print(f"\nrunning workspace back {back_s:.1f} s after the SIGKILL (engine start included)")
    assert not state(client, "stoppedcrash")["Running"]  # stopped by dev8: stays stopped
    control = state(client, "controlcrash")
    assert not control["Running"] and control["ExitCode"] == 0  # the bug, as it was

    client = private.restart()  # a clean restart (or a reboot) keeps doing what it did
    wait_for(lambda: state(client, "runningcrash")["Running"], ENGINE_S, "back again")
    assert not state(client, "stoppedcrash")["Running"]
    assert DockerProvider(client).start("stoppedcrash").state == "running"


@pytest.fixture
def api(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Api]:
    database = tmp_path / "server.db"
    shutil.copy(migrated_sqlite, database)
    with serving(tmp_path, sqlite_url(database), provider=FakeProvider(), agent=FakeAgent()) as api:
        yield api


def test_the_server_starts_a_running_workspace_it_finds_exited_but_not_a_stopped_one(api: Api):
    admin = api.admin()
    api.settle(admin, create(admin, "up"))
    api.settle(admin, create(admin, "down"))
    api.settle(admin, admin.post("/api/v1/workspaces/down/stop").json())
    up, down = (api.context.store.find("admin", name) for name in ("up", "down"))
    assert up is not None and down is not None
    api.provider.containers[up.id].state = ContainerState.EXITED  # what the crash left

    def history(name: str) -> list[dict]:
        return admin.get(f"/api/v1/workspaces/{name}/operations").json()

    started = wait_for(lambda: [op for op in history("up") if op["actor"] == "reconciler"])
    assert started[0]["action"] == "start"
    api.wait_operation(admin, started[0]["id"])
    assert api.provider.containers[up.id].state is ContainerState.RUNNING
    api.watch.observed(passes=2)
    assert history("down")[0]["action"] == "stop"  # nothing queued after the user's stop
    assert api.provider.containers[down.id].state is ContainerState.EXITED
