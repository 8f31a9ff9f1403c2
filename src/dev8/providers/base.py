"""The provider contract every backend implements.

Every method is idempotent and says what it does in each case; the service layer relies on
that to retry safely and to recover after a crash in the middle of an operation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from dev8.core.errors import ProviderError
from dev8.core.resources import Resources
from dev8.core.states import ContainerState

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
    # The roles of ``PORTS`` to publish on the host (a relayed workspace: its agent only).
    published: tuple[str, ...] = tuple(PORTS)
    # Bytes by volume role (home, workspace): backends that can enforce a size do.
    quotas: Mapping[str, int] = field(default_factory=dict)


@dataclass
class RuntimeStatus:
    """What the backend sees of a workspace's container, in provider-neutral terms."""

    state: ContainerState
    container_id: str | None = None
    image_id: str | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    restart_count: int = 0
    started_at: datetime | None = None  # aware, UTC; None if it never started
    ports: dict[str, int] = field(default_factory=dict)  # published now
    host_ports: dict[str, int] = field(default_factory=dict)  # configured, even when stopped
    # Where the server reaches the workspace's agent while it runs (the one door into a
    # workspace): the backend's answer, e.g. a port published on 127.0.0.1, or a Pod's IP.
    agent_url: str | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.state is ContainerState.RUNNING


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    role: str
    workspace_id: str
    mountpoint: str | None = None
    created_at: str | None = None
    driver: str = "local"
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)


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
        """The container's current state (``ContainerState.MISSING`` when there is none)."""

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


# Optional capability: helper containers on a workspace's volumes -------------------------


@dataclass(frozen=True)
class HelperMount:
    """A named volume or a host path (file or directory) mounted into a helper."""

    target: str
    volume: str | None = None
    host_path: str | None = None
    read_only: bool = True


@dataclass(frozen=True)
class HelperJob:
    """A short-lived container that works on volumes: backup, restore, du, clean, snapshots.

    Big data never goes through the engine's API (its attach stream carries about 30 MB/s);
    archives are read and written through ``host_path`` mounts. ``stdin`` is for small secrets
    (a repository password), which then appear neither in the environment nor in argv.
    """

    workspace_id: str
    owner: str
    purpose: str  # part of the container's name: backup, restore, du, snapshot...
    image: str
    argv: Sequence[str]
    mounts: Sequence[HelperMount] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    network: bool = False  # no network unless the job talks to a remote repository
    stdin: bytes | None = None
    # Killed beyond it: room for a backup of the largest default quotas at a slow disk's pace.
    deadline_s: float = 6 * 3600.0


@dataclass(frozen=True)
class HelperResult:
    exit_code: int
    stdout: bytes
    stderr: bytes  # the last 64 KiB

    def error_tail(self) -> str:
        lines = self.stderr.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"exit code {self.exit_code}"


@dataclass(frozen=True)
class MountInfo:
    """One mount of a workspace container, as the engine reports it."""

    destination: str
    type: str  # volume, bind, tmpfs...
    name: str | None = None  # the volume's name for type "volume"
    source: str | None = None
    read_write: bool = True


@runtime_checkable
class VolumeAccess(Protocol):
    """Backends that can run helper containers on volumes (backup, restore, usage, doctor).

    Detected with ``isinstance(provider, VolumeAccess)``, never assumed.
    """

    def run_helper(
        self, job: HelperJob, on_stderr: Callable[[str], None] | None = None
    ) -> HelperResult:
        """Run ``job`` to completion and remove its container, also when interrupted.

        ``on_stderr`` receives each line the job writes to stderr as it comes. Raises
        ``ImageNotFound`` if the image is missing, before anything is created."""

    def remove_stale_helpers(self, workspace_id: str) -> list[str]:
        """Remove helpers of the workspace whose dev8 process is gone (a killed command
        leaves its helper running or exited). Returns their names; none: no-op."""

    def host_paths_visible(self) -> bool:
        """Whether ``HelperMount.host_path`` refers to this machine's files."""

    def container_mounts(self, workspace_id: str) -> list[MountInfo]:
        """The workspace container's mounts; empty when it has no container."""

    def inspect_volume(self, name: str) -> VolumeInfo:
        """One volume by name; ``NotFound`` if there is none."""


@runtime_checkable
class VolumeQuotas(Protocol):
    """Optional: backends that enforce ``WorkspaceSpec.quotas`` on some hosts. ``create``
    makes new volumes of that size and grows existing ones to it."""

    def quota_enforcement(self) -> str:
        """One line: "enforced (...)" or "warn only: <why>"."""

    def check_quotas(self, workspace_id: str, quotas: Mapping[str, int]) -> None:
        """``InvalidInput`` if an enforced volume cannot take its new quota (a shrink),
        before anything changes."""

    def writable_layer_bytes(self, workspace_id: str) -> int | None:
        """What the container wrote outside its volumes (apt installs, /tmp); None when
        it has no container. Slow on a big layer: for checks, not for every pass."""


@runtime_checkable
class QuotaVolumes(Protocol):
    """Optional: backends that bound volumes with the host's help (Docker's enforced quotas
    sit on loop devices): re-attached after a reboot, and existing unbounded volumes moved
    onto bounded ones."""

    def attach_all(self) -> list[str]:
        """Make every volume this backend enforces mountable; their names."""

    def volume_enforced(self, workspace_id: str, role: str) -> bool: ...

    def prepare_enforced(self, workspace_id: str, role: str, size: int) -> str:
        """A new, empty bounded volume of ``size`` bytes for ``role``, under a temporary
        name (returned) for a helper to copy the old volume into. ``InvalidInput`` where
        the host cannot bound volumes."""

    def commit_enforced(self, workspace_id: str, role: str) -> None:
        """Put the copy in the old volume's place (no container may mount it). Interrupted,
        the next ``create`` adopts the copy."""


@runtime_checkable
class LayerSizes(Protocol):
    """Optional: what each running workspace wrote outside its volumes, in one call."""

    def writable_layers(self) -> dict[str, int]:
        """Bytes by workspace id, for the running workspace containers; slow on big layers
        (the engine measures each), so for a check every few minutes, not every pass."""


@runtime_checkable
class SyncedDisk(Protocol):
    """Optional: backends that keep nothing of a workspace's own disk at a stop, where its
    agent syncs the home and /workspace to storage (ACI): before a stop, the service asks
    the agent for a last sync and waits up to ``sync_before_stop_s``."""

    sync_before_stop_s: float


@runtime_checkable
class Freezable(Protocol):
    """Optional: backends that can freeze a running workspace's processes (and thaw them),
    so that a helper reads its volumes while nothing in it can change them."""

    def freeze(self, workspace_id: str) -> bool:
        """Freeze it if it runs; whether it was frozen (and needs ``thaw``)."""

    def thaw(self, workspace_id: str) -> None: ...


@runtime_checkable
class BulkStatus(Protocol):
    """Optional: the state of every workspace container in one call, so that a server can
    watch thousands of workspaces without asking about each one."""

    def statuses(self) -> dict[str, RuntimeStatus]:
        """By workspace id, for every container this backend manages; a workspace missing
        from the result has no container. Only ``state``, ``container_id``, ``image_id``
        and ``ports`` are filled in; ``status`` tells the rest."""


@runtime_checkable
class InteractiveExec(Protocol):
    """Optional: run a command in a workspace attached to this terminal (``dev8 exec``)."""

    def exec_argv(
        self, workspace_id: str, argv: Sequence[str], *, user: str, workdir: str, tty: bool
    ) -> list[str]:
        """The local command line that runs ``argv`` in the running workspace with this
        process's stdin, stdout and stderr (and a terminal if ``tty``); the caller execs it.
        ``Conflict`` unless the workspace runs."""


class ReaderUnavailable(Exception):
    """A backend's light read-only view cannot answer (``registry.make_reader``): the full
    provider takes over."""


def volume_access(provider: Provider, purpose: str) -> VolumeAccess:
    """``provider`` as a ``VolumeAccess``, or a ``ProviderError`` saying it cannot do
    ``purpose`` (e.g. "run backups")."""
    if not isinstance(provider, VolumeAccess):
        raise ProviderError(f"the {provider.name} backend cannot {purpose}")
    return provider
