"""A fault-injecting provider for tests of the server's logic where no engine is needed.

It keeps containers, volumes and networks in memory, honours the provider contract's idempotency,
and can be told to fail (``fail``, always or the next few times; ``lose_answer``: the work
is done but the call fails, as when the engine's reply is lost), to be slow (``delay``) or
to lose a container (``vanish``). Tests that use it say so: everything else they touch
(database, HTTP server, reconciler threads) is real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from dev8.core.errors import Conflict, Dev8Error, ImageNotFound, NotFound, ProviderError
from dev8.core.images import workspace_image
from dev8.core.naming import VOLUME_ROLES, volume_name
from dev8.core.states import ContainerState
from dev8.providers.base import ExecResult, RuntimeStatus, VolumeInfo, WorkspaceSpec

STARTED_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
IMAGES = {"dev8/workspace:test": "sha256:" + "a" * 64, "dev8/workspace:next": "sha256:" + "b" * 64}


@dataclass
class FakeContainer:
    spec: WorkspaceSpec
    state: ContainerState = ContainerState.CREATED
    ports: dict[str, int] = field(default_factory=dict)
    layer_bytes: int = 0  # what it wrote outside its volumes


class FakeProvider:
    name = "fake"

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.volumes_by_workspace: dict[str, set[str]] = {}
        self.networks: set[str] = set()  # workspace ids that have their own network
        self.images = {**IMAGES, workspace_image(): IMAGES["dev8/workspace:test"]}
        self.failures: dict[str, Dev8Error] = {}
        self.failures_left: dict[str, int] = {}  # methods that fail only so many more times
        self.lost_answers: dict[str, Dev8Error] = {}
        self.delays: dict[str, float] = {}
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._next_port = 40000
        # Where every running container's agent answers: a test's stand-in agent (None: a
        # made-up port where nothing listens).
        self.agent_url: str | None = None

    # Fault injection --------------------------------------------------------------------
    def fail(self, method: str, error: Dev8Error | None = None, times: int | None = None) -> None:
        """Make ``method`` raise ``error``: from now on, or only the next ``times`` calls."""
        self.failures[method] = error or ProviderError(f"injected: {method} refused")
        if times is not None:
            self.failures_left[method] = times

    def lose_answer(self, method: str, error: Dev8Error | None = None) -> None:
        """Make ``method`` (create or start) do its work and then raise ``error``."""
        self.lost_answers[method] = error or ProviderError(f"injected: {method} timed out")

    def heal(self) -> None:
        self.failures.clear()
        self.failures_left.clear()
        self.lost_answers.clear()

    def delay(self, method: str, seconds: float) -> None:
        self.delays[method] = seconds

    def vanish(self, workspace_id: str) -> None:
        self.containers.pop(workspace_id, None)

    def _call(self, method: str, workspace_id: str = "") -> None:
        self.calls.append((method, workspace_id))
        if method in self.delays:
            time.sleep(self.delays[method])
        if method in self.failures:
            error = self.failures[method]
            if method in self.failures_left:
                self.failures_left[method] -= 1
                if self.failures_left[method] <= 0:
                    del self.failures[method], self.failures_left[method]
            raise error

    # Contract ---------------------------------------------------------------------------
    def ping(self) -> None:
        self._call("ping")

    def image_id(self, reference: str) -> str:
        self._call("image_id")
        if reference not in self.images and reference not in self.images.values():
            raise ImageNotFound(f"image {reference} is not on this engine")
        return self.images.get(reference, reference)

    def create(self, spec: WorkspaceSpec) -> RuntimeStatus:
        self._call("create", spec.workspace_id)
        self.image_id(spec.image)  # a missing image is refused before anything is made
        with self._lock:
            self.volumes_by_workspace.setdefault(spec.workspace_id, set()).update(
                volume_name(spec.workspace_id, role) for role in VOLUME_ROLES
            )
            if spec.workspace_id not in self.containers:
                self.networks.add(spec.workspace_id)
                ports = {role: spec.host_ports.get(role) or self._port() for role in spec.published}
                self.containers[spec.workspace_id] = FakeContainer(spec, ports=ports)
        self._answer("create")
        return self.status(spec.workspace_id)

    def _answer(self, method: str) -> None:
        if method in self.lost_answers:
            raise self.lost_answers[method]

    def _port(self) -> int:
        self._next_port += 1
        return self._next_port

    def start(self, workspace_id: str) -> RuntimeStatus:
        self._call("start", workspace_id)
        container = self.containers.get(workspace_id)
        if container is None:
            raise NotFound(f"workspace {workspace_id} has no container")
        container.state = ContainerState.RUNNING
        self._answer("start")
        return self.status(workspace_id)

    def stop(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        self._call("stop", workspace_id)
        if workspace_id in self.containers:
            self.containers[workspace_id].state = ContainerState.EXITED
        return self.status(workspace_id)

    def restart(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        self._call("restart", workspace_id)
        return self.start(workspace_id)

    def remove(self, workspace_id: str) -> None:
        self._call("remove", workspace_id)
        self.containers.pop(workspace_id, None)
        self.networks.discard(workspace_id)

    def remove_volumes(self, workspace_id: str) -> list[str]:
        self._call("remove_volumes", workspace_id)
        return sorted(self.volumes_by_workspace.pop(workspace_id, set()))

    def status(self, workspace_id: str) -> RuntimeStatus:
        container = self.containers.get(workspace_id)
        if container is None:
            return RuntimeStatus(ContainerState.MISSING)
        running = container.state is ContainerState.RUNNING
        return RuntimeStatus(
            state=container.state,
            container_id=f"c-{workspace_id}",
            image_id=container.spec.image,
            exit_code=0,
            started_at=STARTED_AT,
            ports=dict(container.ports) if running else {},
            host_ports=dict(container.ports),
            agent_url=(
                (self.agent_url or f"http://127.0.0.1:{container.ports['agent']}")
                if running and "agent" in container.ports
                else None
            ),
        )

    def statuses(self) -> dict[str, RuntimeStatus]:
        return {workspace_id: self.status(workspace_id) for workspace_id in list(self.containers)}

    def writable_layers(self) -> dict[str, int]:
        self._call("writable_layers", "")
        return {
            workspace_id: container.layer_bytes
            for workspace_id, container in list(self.containers.items())
            if container.state is ContainerState.RUNNING
        }

    def exec(
        self, workspace_id: str, argv: Sequence[str], user: str = "dev8", workdir: str | None = None
    ) -> ExecResult:
        self._call("exec", workspace_id)
        if not self.status(workspace_id).running:
            raise Conflict(f"workspace {workspace_id} is not running")
        return ExecResult(1, b"the fake provider runs nothing")

    def logs(
        self, workspace_id: str, follow: bool = False, tail: int | None = None
    ) -> Iterator[bytes]:
        if workspace_id not in self.containers:
            raise NotFound(f"workspace {workspace_id} has no container")
        return iter([b"fake log line\n"])

    def volumes(self, workspace_id: str | None = None) -> list[VolumeInfo]:
        found = []
        for owner, names in self.volumes_by_workspace.items():
            if workspace_id in (None, owner):
                for name in sorted(names):
                    found.append(VolumeInfo(name, name.rsplit("-", 1)[1], owner))
        return found

    def leftovers(self, workspace_id: str) -> set[str]:
        """What of the workspace, volumes aside, is still there."""
        found = {f"container {workspace_id}"} if workspace_id in self.containers else set()
        return found | ({f"network {workspace_id}"} if workspace_id in self.networks else set())

    def objects(self) -> tuple[set[str], set[str]]:
        """Workspace ids that have a container, and that have volumes."""
        return set(self.containers), {k for k, v in self.volumes_by_workspace.items() if v}


class FakeAgent:
    """Answers for the agents of the fake containers: healthy, with settable activity. An
    agent whose address is in ``connected`` reports activity at the moment it is asked
    (someone is working in it), and ``reported`` keeps the last such moment."""

    def __init__(self) -> None:
        self.last_activity: dict[str, float | None] = {}
        self.connected: set[str] = set()
        self.reported: dict[str, float] = {}
        self.health_reason: str | None = None
        self.ssh_keys: dict[str, str] = {}  # agent address -> the keys last handed to it

    def health(self, agent_url: str | None) -> str | None:
        return self.health_reason if agent_url else "the agent port is not published"

    def put_ssh_keys(self, agent_url: str | None, token: str, keys: str) -> int:
        if not agent_url:
            raise ProviderError("the workspace is not running (no agent port)")
        self.ssh_keys[agent_url] = keys
        return len(keys.splitlines())

    def status(self, agent_url: str | None, token: str) -> dict:
        if not agent_url:
            raise ProviderError("the workspace is not running (no agent port)")
        if agent_url in self.connected:
            self.reported[agent_url] = time.time()
            self.last_activity[agent_url] = self.reported[agent_url]
        return {
            "health": self.health_reason,
            "activity": {"last_activity_at": self.last_activity.get(agent_url)},
            "ssh_host_keys": [],
        }
