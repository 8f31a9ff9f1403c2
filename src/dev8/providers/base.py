"""The provider contract every backend implements.

Every method is idempotent and says what it does in each case; the service layer relies on
that to retry safely and to recover after a crash in the middle of an operation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from dev8.core.resources import Resources

PORTS = {"ide": 8080, "ssh": 2222, "agent": 9000}


@dataclass(frozen=True)
class WorkspaceSpec:
    """Everything a backend needs to realise one workspace."""

    workspace_id: str
    name: str
    owner: str
    image: str  # an image id (sha256:...) or reference the backend can run
    resources: Resources
    env: Mapping[str, str] = field(default_factory=dict)  # includes secrets
    # Host ports to publish on; empty roles get free ones, which ``create`` reports back in
    # ``RuntimeStatus.host_ports`` so that a later container can reuse them.
    host_ports: Mapping[str, int] = field(default_factory=dict)


@dataclass
class RuntimeStatus:
    """What the backend sees. ``state`` is one of: running, restarting, exited, created,
    paused, missing (no container)."""

    state: str
    container_id: str | None = None
    image_id: str | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    restart_count: int = 0
    started_at: str | None = None
    ports: dict[str, int] = field(default_factory=dict)  # published now
    host_ports: dict[str, int] = field(default_factory=dict)  # configured, even when stopped
    error: str = ""


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    role: str
    workspace_id: str
    mountpoint: str | None = None
    created_at: str | None = None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes


class Provider(Protocol):
    name: str

    def ping(self) -> None:
        """Raise ``EngineUnavailable`` unless the backend answers."""

    def create(self, spec: WorkspaceSpec) -> RuntimeStatus:
        """Create the volumes (kept if they exist) and the container (not started).

        If a container for this workspace exists and runs ``spec.image``, it is adopted and
        its status returned. On failure, everything this call created is removed; volumes
        that existed before are never touched. Raises ``ImageNotFound`` when the image is
        missing, before anything is created."""

    def start(self, workspace_id: str) -> RuntimeStatus:
        """Start the container; a running one is left alone. ``NotFound`` if none exists."""

    def stop(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        """Stop the container; a stopped or missing one is left alone."""

    def restart(self, workspace_id: str, timeout: int = 10) -> RuntimeStatus:
        """Stop then start. ``NotFound`` if no container exists."""

    def remove(self, workspace_id: str) -> None:
        """Remove the container (stopping it first). Volumes stay. Missing: no-op."""

    def remove_volumes(self, workspace_id: str) -> list[str]:
        """Destroy the workspace's volumes; returns the names removed. Missing: no-op."""

    def status(self, workspace_id: str) -> RuntimeStatus:
        """The container's current state (``missing`` when there is none)."""

    def exec(
        self, workspace_id: str, argv: Sequence[str], user: str = "dev8", workdir: str | None = None
    ) -> ExecResult:
        """Run a command in the running container and wait for it."""

    def logs(
        self, workspace_id: str, follow: bool = False, tail: int | None = None
    ) -> Iterator[bytes]:
        """The container's output (the agent's log, with sshd and code-server)."""

    def volumes(self, workspace_id: str | None = None) -> list[VolumeInfo]:
        """dev8 volumes, of one workspace or all."""

    def image_id(self, reference: str) -> str:
        """Resolve an image reference to its id; ``ImageNotFound`` if it is not present."""


@runtime_checkable
class BulkStatus(Protocol):
    """Optional: the state of every workspace container in one call, so that a server can
    watch thousands of workspaces without asking about each one."""

    def statuses(self) -> dict[str, RuntimeStatus]:
        """By workspace id, for every container this backend manages; a workspace missing
        from the result has no container. Only ``state``, ``container_id``, ``image_id``
        and ``ports`` are filled in; ``status`` tells the rest."""
