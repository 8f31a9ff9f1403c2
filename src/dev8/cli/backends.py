"""What the CLI asks of its backends, declared once.

Every command talks to one of these, chosen in ``dev8.cli.context``: in local mode the
services themselves (``WorkspaceService``, ``BackupService``, ``SnapshotService``) implement
them, and ``LocalAccess`` the ways in; in server mode the SDK-backed ``RemoteWorkspaces``
(workspaces and ways in), ``RemoteBackups`` and ``RemoteSnapshots`` do, with the same
signatures. An option one backend cannot honour is
refused by that backend with ``InvalidInput`` and a one-line message; a command that exists
in one mode only asks ``context.local_only`` or ``context.server_only``.

mypy checks every implementation against these where ``context`` returns it, and
``tests/unit/cli/test_backends.py`` checks their parameters at run time.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from dev8.backup.progress import TransferProgress
    from dev8.core.workspace import CreateRequest, Operation, Workspace
    from dev8.service.backups import BackupResult, RestoreResult
    from dev8.service.snapshots import Snapshot, SnapshotResult

Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    pass


class WorkspaceBackend(Protocol):
    """The workspaces of the current user. Names are workspace names; a name that is not
    one raises ``NotFound``; an action the workspace's state forbids raises ``Conflict``."""

    def ping(self) -> None:
        """Raise ``EngineUnavailable`` (or the server's error) unless the backend answers."""

    def find(self, name: str) -> Workspace:
        """The workspace as last recorded, without asking the engine."""

    def get(self, name: str) -> Workspace:
        """The workspace with its state observed now."""

    def list(self) -> builtins.list[Workspace]:
        """Every live workspace, observed now."""

    def records(self) -> builtins.list[Workspace]:
        """Every live workspace as recorded (cheap: for `dev8 config-ssh`)."""

    def history(self, name: str, limit: int = 50) -> builtins.list[Operation]:
        """The newest ``limit`` operations on ``name`` (removed workspaces included)."""

    def agent_status_of(self, workspace: Workspace) -> dict:
        """What the agent of the running ``workspace`` reports; ``Conflict`` if it is down."""

    def volume_names(self, name: str) -> builtins.list[str]:
        """The names of ``name``'s volumes (a removed workspace keeps them until purged)."""

    def logs(self, name: str, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        """The container's output, as chunks of bytes."""

    def ide_password(self, name: str) -> str:
        """The IDE's password."""

    def create(self, request: CreateRequest, progress: Progress = quiet) -> Workspace:
        """Create the workspace without starting it; ``AlreadyExists`` if it exists."""

    def up(self, request: CreateRequest, progress: Progress = quiet) -> Workspace:
        """Create it if needed, start it and wait until it is healthy."""

    def start(self, name: str, progress: Progress = quiet, wait: bool = True) -> Workspace:
        """Start it; with ``wait``, return once it is healthy."""

    def stop(self, name: str, progress: Progress = quiet) -> Workspace:
        """Stop it, keeping its volumes."""

    def restart(self, name: str, progress: Progress = quiet) -> Workspace:
        """Restart its container and wait until it is healthy."""

    def rebuild(self, name: str, image: str | None = None, progress: Progress = quiet) -> Workspace:
        """A new container from ``image`` (default: its own, resolved again), same volumes."""

    def remove(
        self, name: str, purge: bool = False, progress: Progress = quiet
    ) -> builtins.list[str]:
        """Remove the container; with ``purge`` the volumes too. Returns the destroyed ones."""


class ByteStream(Protocol):
    """One TCP stream into a workspace, blocking; one thread may read while another
    writes. What `dev8 ssh-proxy` and `dev8 port-forward` relay."""

    def read(self) -> bytes:
        """The next bytes that arrived (at most 1 MiB); ``b""`` once the other side has
        finished sending."""

    def write(self, data: bytes) -> None:
        """Send all of ``data``."""

    def close_write(self) -> None:
        """No more data from this side (a half-close): the other side reads its end."""

    def close(self) -> None:
        """Close both directions at once."""


PortOpener = Callable[[int], ByteStream]


class AccessBackend(Protocol):
    """The ways into the running workspaces of ``WorkspaceBackend``: the IDE's address,
    SSH, and streams to any port. Local mode goes to the ports the workspace publishes on
    this machine's loopback, or through its agent; server mode through the server, which
    relays each stream through the workspace's agent."""

    def ide_url(self, name: str) -> str:
        """The address to open the IDE of the running workspace ``name`` at."""

    def ssh_stream(self, workspace: Workspace) -> ByteStream:
        """A new stream to the sshd of the running ``workspace``."""

    def port_opener(self, workspace: Workspace) -> PortOpener:
        """What opens a new stream to a port inside the running ``workspace`` at each
        call (``WorkspaceUnreachable`` when nothing listens there)."""

    def ssh_destination(self, workspace: Workspace, dev8_argv: Sequence[str]) -> list[str]:
        """The arguments that make ``ssh`` reach the running ``workspace``'s sshd, put
        after its options (``dev8_argv`` runs this dev8, for a ProxyCommand)."""

    def authorize_ssh_keys(self, public_keys: str) -> bool:
        """Let ``public_keys`` (authorized_keys lines) log in to this user's workspaces;
        True if that changed anything."""


class BackupBackend(Protocol):
    """Volume archives: `dev8 backup` and `dev8 restore`."""

    def backup(
        self,
        name: str,
        *,
        volume: str = "all",
        output: str | Path | None = None,
        archive_format: str = "tar.zst",
        stop: bool = False,
        progress: TransferProgress | None = None,
    ) -> builtins.list[BackupResult]:
        """Archive ``volume`` (home, workspace, system or all) into files on this machine."""

    def restore(
        self,
        name: str,
        sources: builtins.list[Path],
        volume: str | None = None,
        as_name: str | None = None,
        progress: TransferProgress | None = None,
    ) -> RestoreResult:
        """Replace the volumes of ``name`` (or of the new workspace ``as_name``)."""


@runtime_checkable
class KeepsBackups(Protocol):
    """A ``BackupBackend`` that also keeps what it backs up (a server): ``kept_as`` is the
    id of the last backup made, to restore with `dev8 restore NAME --from ID`."""

    kept_as: str | None


class SnapshotBackend(Protocol):
    """Incremental snapshots: `dev8 snapshot create|ls|restore`."""

    def create(
        self,
        name: str,
        keep_last: int | None = None,
        keep_daily: int | None = None,
        keep_weekly: int | None = None,
        progress: TransferProgress | None = None,
    ) -> SnapshotResult:
        """Snapshot every volume; with a retention policy, forget what it does not keep."""

    def list(self, name: str) -> builtins.list[Snapshot]:
        """``name``'s snapshots, oldest first."""

    def restore(
        self,
        name: str,
        snapshot: str,
        volume: str = "all",
        as_name: str | None = None,
        progress: TransferProgress | None = None,
    ) -> tuple[Workspace, builtins.list[str]]:
        """Put a snapshot back; returns the workspace written to and the volume roles."""
