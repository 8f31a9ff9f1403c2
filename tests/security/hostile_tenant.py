"""The hostile tenant (issue 16): member A's workspace misbehaves in every way its owner can,
while member B creates, uses and idle-stops a workspace of their own on the same server.
Shared by ``tests/security/test_hostile_tenant.py`` (what must hold) and
``benchmarks/hostile_tenant.py`` (what it costs B).

A is root in their workspace (passwordless sudo); ``docker exec -u root`` stands in for A's
shell, and the files it writes are what A could write. A's misbehaviour:

- *A replaced agent.* A keeps a copy of the real entrypoint, writes one that runs
  ``tests/security/hostile_agent.py`` on the agent's port (9000) instead of the agent, and
  kills the agent: the container exits, the engine starts it again (restart policy
  ``always``), and every request to A's agent port gets, in turn, ``last_activity_at:
  1e999``, a 256 MiB body, or a reply trickled one byte every 0.5 s. The replaced
  entrypoint puts the real one back as it starts, so A's next start (a restore's, a
  restart's) is the real agent's again: a convenience of the test, which arms it again.
- *A fork loop* (root, python3): forks sleepers until the kernel refuses (the container's
  pids limit), keeps trying every 20 ms, and kills them all at a stop file, its deadline,
  or the container's stop. Each sleeper also ends by itself at the deadline.
- *A restore race*: a planter (no forks: it must work at the pids limit) swaps symbolic
  links in and out of ``.dev8-restore`` of both volumes (the area itself, ``journal.json``,
  ``incoming``, ``previous``, pointing at ``/`` and ``/etc``) while A restores a backup of
  their own workspace through the API.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import docker.models.containers
import httpx

from dev8.client import Client
from dev8.client.models import Workspace
from dev8.providers.base import PORTS
from dev8.providers.docker.specs import PIDS_LIMIT
from tests.integration.helpers import forwarded, ssh
from tests.integration.server.process import ServerProcess

HOSTILE_DIR = "/opt/dev8/hostile"
ENTRYPOINT = "/opt/dev8/bin/dev8-entrypoint"
STOP_FILE = "/tmp/dev8-hostile-stop"  # in A's container: the fork loop and planter end
FORKS_REPORT = "/tmp/dev8-forks.json"
AGENT_REPORT = "/tmp/dev8-hostile-agent.json"  # the hostile agent's counts, every 0.5 s
HOSTILE_AGENT = Path(__file__).with_name("hostile_agent.py")
T = TypeVar("T")

# Runs in A's container instead of the agent: hostile_agent.HostileAgent on port 9000,
# each request answered by the next of three misbehaviours, by 16 threads made at start.
RUNNER = f"""import json, os, socket, sys, threading, time
sys.path.insert(0, "{HOSTILE_DIR}")
import hostile_agent as h
real = socket.create_server
socket.create_server = lambda _address, **kw: real(("0.0.0.0", {PORTS["agent"]}), **kw)
behaviours = [
    h.answers(b'{{"activity": {{"last_activity_at": 1e999}}, "health": null}}'),
    h.streams(256 << 20),
    h.trickles(0.5),
]
class Pooled(h.HostileAgent):
    # Threads made up front: at the pids limit (A's own fork loop) none can be started.
    def _accept(self):
        for _ in range(15):
            threading.Thread(target=self._serve_each, daemon=True).start()
        self._serve_each()

    def _serve_each(self):
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._serve(connection)


agent = Pooled(lambda connection, a: behaviours[a.requests % 3](connection, a))
while True:
    with open("{AGENT_REPORT}.new", "w") as report:
        json.dump({{"requests": agent.requests, "sent": agent.sent}}, report)
    os.replace("{AGENT_REPORT}.new", "{AGENT_REPORT}")
    time.sleep(0.5)
"""

# The replaced entrypoint: one-shot (puts the real one back), then the hostile agent.
FAKE_ENTRYPOINT = f"""#!/bin/sh
cp {HOSTILE_DIR}/dev8-entrypoint.real {ENTRYPOINT}
exec python3 {HOSTILE_DIR}/runner.py
"""

# argv: seconds. Forks sleepers until refused (the pids limit), retrying; then kills them.
FORK_LOOP = f"""import json, os, signal, sys, time
seconds = float(sys.argv[1])
deadline = time.monotonic() + seconds
children, refused = [], 0
while time.monotonic() < deadline and not os.path.exists("{STOP_FILE}"):
    try:
        pid = os.fork()
    except OSError:  # EAGAIN: the container's pids limit
        refused += 1
        time.sleep(0.02)
        continue
    if pid == 0:
        try:
            os.execv("/bin/sleep", ["sleep", str(int(seconds) + 1)])
        finally:
            os._exit(1)
    children.append(pid)
for pid in children:
    os.kill(pid, signal.SIGKILL)
for pid in children:
    os.waitpid(pid, 0)
with open("{FORKS_REPORT}", "w") as report:
    json.dump({{"forked": len(children), "refused": refused}}, report)
"""

# argv: seconds. Plants links in both volumes' restore areas, as fast as it can, no forks.
PLANTER = f"""import os, sys, time
deadline = time.monotonic() + float(sys.argv[1])
plants = {{"journal.json": "/etc/passwd", "incoming": "/", "previous": "/etc", "tree": "/"}}
def plant(link, target):
    try:
        os.symlink(target, link + ".new")
    except OSError:
        pass
    try:
        os.rename(link + ".new", link)
    except OSError:
        pass
while time.monotonic() < deadline and not os.path.exists("{STOP_FILE}"):
    for root in ("/home/dev8", "/workspace"):
        area = root + "/.dev8-restore"
        if os.path.isdir(area) and not os.path.islink(area):
            for name, target in plants.items():
                plant(area + "/" + name, target)
        else:
            plant(area, "/")
    time.sleep(0.001)
"""


def wait_for(check: Callable[[], T | None], timeout: float, message: str, every: float = 0.2) -> T:
    """``check()``'s first true value, polled; an AssertionError naming ``message`` when
    ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}: not within {timeout:.0f} s")
        time.sleep(every)


# A's side -------------------------------------------------------------------------------
def put_file(container: docker.models.containers.Container, path: str, text: str) -> None:
    """``text`` written as ``path`` (root's, mode 0755) through the engine's archive API,
    which starts no process in the container (the pids limit may be reached)."""
    data = text.encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo(Path(path).name)
        member.size, member.mode = len(data), 0o755
        tar.addfile(member, io.BytesIO(data))
    assert container.put_archive(str(Path(path).parent), archive.getvalue()), path


def read_json(container: docker.models.containers.Container, path: str) -> dict[str, int] | None:
    """The JSON object at ``path``, through the archive API (no process started), or None."""
    with contextlib.suppress(docker.errors.APIError, KeyError, StopIteration, ValueError):
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            found = tar.extractfile(next(iter(tar.getmembers())))
            return dict(json.loads(found.read())) if found else None
    return None


def as_root(container: docker.models.containers.Container, script: str) -> str:
    code, output = container.exec_run(["sh", "-c", script], user="root")
    text = output.decode(errors="replace")
    assert code == 0, f"{script!r} exited {code}: {text[-2000:]}"
    return text


def replace_agent(container: docker.models.containers.Container, timeout: float = 120.0) -> None:
    """A's agent replaced by the hostile one (see the module's docstring); returns once the
    engine has started the container again and the hostile agent holds port 9000."""
    as_root(
        container, f"mkdir -p {HOSTILE_DIR} && cp {ENTRYPOINT} {HOSTILE_DIR}/dev8-entrypoint.real"
    )
    put_file(container, f"{HOSTILE_DIR}/hostile_agent.py", HOSTILE_AGENT.read_text())
    put_file(container, f"{HOSTILE_DIR}/runner.py", RUNNER)
    put_file(container, ENTRYPOINT, FAKE_ENTRYPOINT)
    started = container.attrs["State"]["StartedAt"]
    # The agent is tini's one child; killing it ends the container, which the engine
    # starts again with the replaced entrypoint.
    container.exec_run(["sh", "-c", "kill $(cat /proc/1/task/1/children)"], user="root")

    def hostile_serving() -> bool:
        container.reload()
        state = container.attrs["State"]
        if not state["Running"] or state["StartedAt"] == started:
            return False
        code, _ = container.exec_run(
            ["sh", "-c", f"grep -q ':{PORTS['agent']:04X} ' /proc/net/tcp"]
        )
        return code == 0

    wait_for(hostile_serving, timeout, "A's hostile agent on port 9000", every=0.5)


def start_detached(
    container: docker.models.containers.Container, program: str, seconds: float
) -> None:
    name = f"/tmp/dev8-{abs(hash(program)) % 10**8}.py"
    put_file(container, name, program)
    container.exec_run(["python3", name, str(seconds)], user="root", detach=True)


@dataclass
class Hostility:
    """A's workspace turned hostile: replaced agent, fork loop, planter (``arm``)."""

    container: docker.models.containers.Container
    seconds: float
    peaks: list[int] = field(default_factory=list)  # tasks in A's container, once at the limit

    def arm(self, with_planter: bool = True) -> Hostility:
        """Returns once the hostile agent serves and the fork loop is at the pids limit."""
        self.container.reload()
        with contextlib.suppress(docker.errors.APIError):
            self.container.exec_run(["rm", "-f", STOP_FILE, FORKS_REPORT], user="root")
        replace_agent(self.container)
        if with_planter:  # before the fork loop: at the pids limit no exec starts
            start_detached(self.container, PLANTER, self.seconds)
        start_detached(self.container, FORK_LOOP, self.seconds)
        self.peaks.append(at_the_limit(self.container))
        return self

    def fork_report(self, timeout: float = 60.0) -> dict[str, int]:
        """The fork loop's counts, once it has stopped (stop file written here)."""
        put_file(self.container, STOP_FILE, "")
        return wait_for(
            lambda: read_json(self.container, FORKS_REPORT), timeout, "the fork loop's report"
        )

    def agent_report(self) -> dict[str, int]:
        """The hostile agent's counts: requests it answered (in its way), bytes it sent."""
        return read_json(self.container, AGENT_REPORT) or {"requests": 0, "sent": 0}

    def stop(self) -> None:
        """The fork loop and planter told to end (they also end at their deadline)."""
        with contextlib.suppress(docker.errors.APIError, AssertionError):
            put_file(self.container, STOP_FILE, "")


def pids_now(container: docker.models.containers.Container) -> int | None:
    """Tasks in the container's pids cgroup (v1 cgroupfs driver), None where not found."""
    path = Path(f"/sys/fs/cgroup/pids/docker/{container.id}/pids.current")
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text())
    return None


def at_the_limit(container: docker.models.containers.Container, timeout: float = 180.0) -> int:
    """Tasks in A's container once its fork loop has reached the pids limit (the fork loop
    may stop short of it only by refusing: ``PIDS_LIMIT`` less what exits meanwhile)."""

    def found() -> int | None:
        now = pids_now(container)
        return now if now is not None and now >= PIDS_LIMIT - 2 else None

    return wait_for(found, timeout, "A's fork loop at its pids limit")


def race_restore(a: Client, name: str, backup_id: str) -> Any:
    """A's restore of ``name`` from ``backup_id``, requested (while the planter runs)."""
    return a.workspaces.get(name).restore_backup(backup_id).operations[0]


# The two members and the server ---------------------------------------------------------
@dataclass
class Tenants:
    server: ServerProcess
    engine: docker.DockerClient
    a: Client
    b: Client
    a_name: str
    b_name: str
    ssh_key: Path
    image: str
    a_container: docker.models.containers.Container | None = None
    backup_id: str = ""
    answered: list[float] = field(default_factory=list)  # /healthz latencies

    def a_workspace(self, name: str = "evil") -> docker.models.containers.Container:
        """A's running workspace with a backup to restore (``backup_id``)."""
        workspace = self.a.workspaces.create(name, image=self.image, idle_timeout_s=0).wait()
        assert workspace.state == "running", workspace.attrs
        container = self.engine.containers.get(f"dev8-{workspace.id}")
        as_root(container, "echo before > /home/dev8/marker && chown dev8: /home/dev8/marker")
        backup = workspace.backup(volume="all").operations[0].wait(timeout=600)
        self.backup_id = backup.attrs["outcome"]["backup_id"]
        as_root(container, "echo after > /home/dev8/marker")
        self.a_container = container
        return container


@contextlib.contextmanager
def tenants(
    directory: Path,
    engine: docker.DockerClient,
    owner: str,
    ssh_key: Path,
    image: str,
    **settings: str,
) -> Iterator[Tenants]:
    """A real `dev8 server` (Docker provider, SQLite) and two members, A (``OWNER-a``, whose
    workspaces carry that owner label) and B (``OWNER-b``, with ``ssh_key``); the server is
    stopped and both members' objects removed afterwards."""
    from tests.integration.owned import remove_owned

    server = ServerProcess(directory, **settings).start()
    a_name, b_name = f"{owner}-a", f"{owner}-b"
    try:
        a = server.user(a_name)
        b = server.user(b_name, ssh_key.with_suffix(".pub").read_text())
        yield Tenants(server, engine, a, b, a_name, b_name, ssh_key, image)
    finally:
        server.stop()
        remove_owned(engine, a_name)
        remove_owned(engine, b_name)


# B's side --------------------------------------------------------------------------------
def created_healthy(
    b: Client, name: str, image: str, idle_timeout_s: int
) -> tuple[Workspace, float]:
    """B's workspace ``name`` created and started; the seconds from the request to running
    (healthy: the server records running only once the agent says so)."""
    started = time.monotonic()
    workspace = b.workspaces.create(name, image=image, idle_timeout_s=idle_timeout_s).wait(
        timeout=600
    )
    seconds = time.monotonic() - started
    assert workspace.state == "running", workspace.attrs
    return workspace, seconds


def run_command(workspace: Workspace, key: Path, command: str) -> bytes:
    """``command``'s output, run over SSH through the server's tunnel, as B runs it."""
    with forwarded(workspace, PORTS["ssh"]) as port:
        return bytes(ssh(port, key, command).stdout)


def idle_stopped(workspace: Workspace, timeout: float) -> tuple[float, dict[str, Any]]:
    """Waits for the server's idle stop of ``workspace``; the seconds from its idle deadline
    (last activity + timeout, the server's clock) to the stop's end, and the stop."""

    def stopped() -> dict[str, Any] | None:
        history = workspace.history(limit=5)
        stop = next((op.attrs for op in history if op.attrs["actor"] == "idle-timeout"), None)
        return stop if stop and stop["result"] not in ("queued", "running") else None

    stop = wait_for(stopped, timeout, f"{workspace.name}'s idle stop", every=0.25)
    workspace.reload()
    last = _time(workspace.attrs["last_activity_at"])
    deadline = last + timedelta(seconds=workspace.attrs["idle_timeout_s"])
    return (_time(stop["finished_at"]) - deadline).total_seconds(), stop


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# The server -------------------------------------------------------------------------------
def healthz_seconds(url: str) -> float:
    started = time.monotonic()
    answer = httpx.get(f"{url}/healthz", timeout=10)
    assert answer.status_code == 200, answer.text
    return time.monotonic() - started


def log_lines(server: ServerProcess) -> list[str]:
    return server.log.read_text(errors="replace").splitlines()


def median(values: list[float]) -> float:
    return statistics.median(values)
