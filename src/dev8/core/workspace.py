"""The workspace and operation records every layer passes around. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState


@dataclass
class CreateRequest:
    """What a new workspace should be; the CLI builds one in both modes."""

    name: str
    image: str = ""  # "": the backend's default (local: workspace_image(); a server: its own)
    resources: Resources = field(default_factory=lambda: Resources(2, 4096))
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    code_server_password: str | None = None
    host_ports: dict[str, int] = field(default_factory=dict)  # role -> fixed host port
    quotas: dict[str, int] = field(default_factory=dict)  # volume role -> bytes (unset: default)
    idle_timeout_s: int | None = None  # None: the server's default; 0: never stop when idle
    dotfiles_repo: str | None = None  # None: the owner's account setting; "": none


@dataclass
class Workspace:
    id: str
    name: str
    owner: str
    image_ref: str  # what the user asked for, e.g. dev8/workspace:latest
    image_id: str  # what it resolved to (sha256:...), so a moved tag is never used silently
    resources: Resources
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    desired_state: DesiredState = DesiredState.STOPPED
    observed_state: ObservedState = ObservedState.CREATING
    status_message: str = ""
    container_id: str | None = None
    ports: dict[str, int] = field(default_factory=dict)  # published now (empty when stopped)
    # Where the server reaches the agent while the container runs: the provider's answer.
    agent_url: str | None = None
    host_ports: dict[str, int] = field(default_factory=dict)  # pinned for every container
    fixed_ports: dict[str, int] = field(default_factory=dict)  # the ones the user asked for
    quotas: dict[str, int] = field(default_factory=dict)  # volume role -> bytes (unset: default)
    idle_timeout_s: int | None = None  # None: the server's default; 0: never stop when idle
    dotfiles_repo: str | None = None  # None: the owner's account setting; "": none
    last_activity_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # False when read for a listing: ``secrets`` then maps each name to "" and must not be
    # written back or given to a container.
    secrets_loaded: bool = True

    @property
    def ide_url(self) -> str | None:
        port = self.ports.get("ide")
        return f"http://127.0.0.1:{port}/" if port else None


class Action(str, Enum):
    """What an operation does to a workspace. The service's action table says how each is
    carried out and which state it wants."""

    CREATE = "create"
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    REBUILD = "rebuild"
    UPDATE = "update"  # apply changed settings: a new container on the same volumes
    REMOVE = "remove"
    PURGE = "purge"
    # Work on the volumes, queued by the server and carried out by the backup services.
    BACKUP = "backup"
    RESTORE = "restore"
    SNAPSHOT = "snapshot"
    SNAPSHOT_RESTORE = "snapshot-restore"

    def __str__(self) -> str:
        return self.value


PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
UNFINISHED = (PENDING, RUNNING)


@dataclass
class Operation:
    """One change to a workspace: who asked for it, what happened, and when.

    ``started_at`` is when it was asked for; an operation waits as ``pending`` until the
    server's reconciler runs it (the CLI's local mode runs it at once). ``workspace_id`` is
    None once the workspace was purged: the record of the purge outlives it.
    """

    id: str
    workspace_id: str | None
    action: str
    actor: str
    started_at: datetime
    result: str = RUNNING  # pending | running | succeeded | failed
    message: str = ""
    finished_at: datetime | None = None
    owner: str = ""
    workspace_name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0

    def __post_init__(self) -> None:
        self.action = str(self.action)  # an ``Action`` is stored as its plain name

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class OperationEvent:
    """A progress message of an operation, in the order they happened (``seq`` grows)."""

    seq: int
    operation_id: str
    at: datetime
    message: str
