"""What the REST API accepts and returns, one family per resource. Input models forbid
unknown fields, so a typo is an error instead of a silent default. Secret values are
accepted (write-only) and never returned: responses name secrets, nothing more."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dev8.backup.archive import ArchiveFile
from dev8.core.audit import AuditEntry
from dev8.core.environment import check_env_name, user_secret_names
from dev8.core.errors import InvalidInput
from dev8.core.quotas import MIN_QUOTA
from dev8.core.resources import PRESETS
from dev8.core.users import ApiToken, Role, User
from dev8.core.workspace import Operation, OperationEvent, Workspace
from dev8.service.idle import effective_timeout_s, idle_deadline
from dev8.service.kept_backups import KeptBackup
from dev8.service.requests import MAX_IDLE_TIMEOUT_S

NAME = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# An image reference as the engine takes it: name[:tag][@digest], no spaces or control
# characters (the engine gets it in a URL).
IMAGE_REF = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Size = Literal[tuple(PRESETS)]  # type: ignore[valid-type]
QuotaBytes = Annotated[int, Field(ge=MIN_QUOTA, le=1 << 50)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=65536)


class ErrorBody(BaseModel):
    error: str = Field(description="Stable code; the SDK raises the matching dev8 error.")
    message: str


# Workspaces ------------------------------------------------------------------------------
class WorkspaceCreate(Input):
    name: str = NAME
    image: str | None = Field(None, min_length=1, max_length=512, pattern=IMAGE_REF)
    size: Size | None = None
    cpus: float | None = Field(None, ge=0.1, le=256)
    memory_mb: int | None = Field(None, ge=256, le=1048576)
    env: dict[str, str] = Field(default_factory=dict, max_length=200)
    secrets: dict[str, str] = Field(
        default_factory=dict, max_length=200, description="Write-only, e.g. GITHUB_TOKEN."
    )
    ide_password: str | None = Field(
        None,
        min_length=8,
        max_length=256,
        pattern=PRINTABLE,
        description="Write-only; default: a random one.",
    )
    idle_timeout_s: int | None = Field(None, ge=0, le=MAX_IDLE_TIMEOUT_S)
    ide_port: int | None = Field(None, ge=1024, le=65535)
    ssh_port: int | None = Field(None, ge=1024, le=65535)
    quotas: dict[Literal["home", "workspace"], QuotaBytes] = Field(
        default_factory=dict,
        description="Size limits in bytes (default 20 GiB home, 100 GiB workspace); warned "
        "about at 80% and 95%, not enforced by the local engine.",
    )
    start: bool = Field(True, description="Start it once created (like `dev8 up`).")


class WorkspaceUpdate(Input):
    cpus: float | None = Field(None, ge=0.1, le=256)
    memory_mb: int | None = Field(None, ge=256, le=1048576)
    idle_timeout_s: int | None = Field(
        None, ge=0, le=MAX_IDLE_TIMEOUT_S, description="0: never; null: the server's default."
    )
    ide_password: str | None = Field(None, min_length=8, max_length=256, pattern=PRINTABLE)


class RebuildRequest(Input):
    image: str | None = Field(None, min_length=1, max_length=512, pattern=IMAGE_REF)


class WorkspacePublic(BaseModel):
    id: str
    name: str
    owner: str
    image: str
    image_id: str
    cpus: float
    memory_mb: int
    desired_state: str
    state: str
    message: str
    ports: dict[str, int]
    ide_url: str | None
    env: dict[str, str]
    secret_names: list[str]
    idle_timeout_s: int | None
    effective_idle_timeout_s: int
    last_activity_at: datetime | None
    idle_stop_after: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, workspace: Workspace, default_idle_s: int) -> WorkspacePublic:
        return cls(**workspace_fields(workspace, default_idle_s))


def workspace_fields(workspace: Workspace, default_idle_s: int) -> dict[str, Any]:
    """The fields of ``WorkspacePublic`` for ``workspace`` (secret values never included)."""
    return dict(
        id=workspace.id,
        name=workspace.name,
        owner=workspace.owner,
        image=workspace.image_ref,
        image_id=workspace.image_id,
        cpus=workspace.resources.cpus,
        memory_mb=workspace.resources.memory_mb,
        desired_state=workspace.desired_state.value,
        state=workspace.observed_state.value,
        message=workspace.status_message,
        ports=workspace.ports,
        ide_url=workspace.ide_url,
        env=workspace.env,
        secret_names=public_secret_names(workspace.secrets),
        idle_timeout_s=workspace.idle_timeout_s,
        effective_idle_timeout_s=effective_timeout_s(workspace, default_idle_s),
        last_activity_at=workspace.last_activity_at,
        idle_stop_after=idle_deadline(workspace, default_idle_s),
        created_at=workspace.created_at,
        updated_at=workspace.updated_at,
    )


def public_secret_names(secrets: dict[str, str]) -> list[str]:
    return user_secret_names(secrets)


class WorkspacePage(BaseModel):
    items: list[WorkspacePublic]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


class EventPublic(BaseModel):
    seq: int
    at: datetime
    message: str

    @classmethod
    def of(cls, event: OperationEvent) -> EventPublic:
        return cls(seq=event.seq, at=event.at, message=event.message)


class OperationPublic(BaseModel):
    id: str
    workspace_id: str | None
    workspace: str
    owner: str
    action: str
    actor: str
    result: str
    message: str
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    attempts: int
    outcome: dict[str, Any]

    @classmethod
    def of(cls, operation: Operation) -> OperationPublic:
        return cls(
            id=operation.id,
            workspace_id=operation.workspace_id,
            workspace=operation.workspace_name,
            owner=operation.owner,
            action=operation.action,
            actor=operation.actor,
            result=operation.result,
            message=operation.message,
            started_at=operation.started_at,
            finished_at=operation.finished_at,
            duration_s=operation.duration_s,
            attempts=operation.attempts,
            outcome=operation.outcome,
        )


class OperationDetail(OperationPublic):
    events: list[EventPublic]


class WorkspaceAccepted(BaseModel):
    """A change was recorded; ``operations`` (possibly none) carry it out in this order."""

    workspace: WorkspacePublic
    operations: list[OperationPublic]


class VolumePublic(BaseModel):
    name: str
    role: str
    used_bytes: int | None = None
    measured_at: float | None = None
    fs_total_bytes: int | None = None
    fs_free_bytes: int | None = None


# Users and tokens ----------------------------------------------------------------------
# Backups and snapshots --------------------------------------------------------------------
Volume = Literal["all", "home", "workspace", "system"]


class BackupCreate(Input):
    volume: Volume = Field("all", description="One volume, or all (one archive each).")
    format: Literal["tar.zst", "tar.gz"] = Field(
        "tar.zst", description="tar.zst (multi-threaded zstd) or tar.gz (plain `tar xzf`)."
    )
    stop: bool = Field(False, description="Stop a running workspace for a consistent backup.")


class ArchivePublic(BaseModel):
    file: str
    volume: str | None = Field(description="From the archive's manifest.")
    size_bytes: int = Field(description="The archive file.")
    data_bytes: int | None = Field(description="What the volume held.")
    files: int | None
    sha256: str | None = Field(description="Of the compressed tar stream, as recorded.")
    crash_consistent: bool | None = Field(description="Made while the workspace ran.")
    image: str | None

    @classmethod
    def of(cls, archive: ArchiveFile) -> ArchivePublic:
        manifest = archive.manifest
        return cls(
            file=archive.path.name,
            volume=manifest.volume if manifest else None,
            size_bytes=archive.size,
            data_bytes=manifest.bytes if manifest else None,
            files=manifest.files if manifest else None,
            sha256=manifest.archive_sha256 if manifest else None,
            crash_consistent=manifest.crash_consistent if manifest else None,
            image=manifest.image if manifest else None,
        )


class BackupPublic(BaseModel):
    id: str
    created_at: datetime
    archives: list[ArchivePublic]

    @classmethod
    def of(cls, backup: KeptBackup) -> BackupPublic:
        archives = [ArchivePublic.of(archive) for archive in backup.archives]
        return cls(id=backup.id, created_at=backup.created_at, archives=archives)


class VolumeRestore(Input):
    volume: Volume = Field("all", description="Restore one volume, or all the source holds.")


class SnapshotCreate(Input):
    keep_last: int | None = Field(None, ge=1, le=10000)
    keep_daily: int | None = Field(None, ge=1, le=10000)
    keep_weekly: int | None = Field(None, ge=1, le=10000)


class SnapshotPublic(BaseModel):
    id: str
    short_id: str
    time: datetime
    volumes: list[str]


class UserCreate(Input):
    name: str = Field(min_length=1, max_length=63)
    password: str = Field(min_length=1, max_length=1024)
    role: Role = Role.MEMBER


class UserUpdate(Input):
    password: str | None = Field(None, min_length=1, max_length=1024)
    current_password: str | None = Field(
        None, max_length=1024, description="Needed to change your own password."
    )
    role: Role | None = None
    ssh_keys: str | None = Field(
        None, max_length=65536, description="Public keys, authorized_keys format."
    )


class UserPublic(BaseModel):
    id: str
    name: str
    role: Role
    ssh_keys: str
    created_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(
            id=user.id,
            name=user.name,
            role=user.role,
            ssh_keys=user.ssh_keys,
            created_at=user.created_at,
        )


class LoginRequest(Input):
    username: str = Field(min_length=1, max_length=63)
    password: str = Field(min_length=1, max_length=1024)
    token_name: str = Field("cli", min_length=1, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=366)


class TokenCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=366)


class TokenPublic(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenPublic:
        return cls(
            id=token.id,
            name=token.name,
            prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            revoked_at=token.revoked_at,
        )


class TokenCreated(TokenPublic):
    token: str = Field(description="Shown once; only its hash is kept.")
    user: str


# Audit and health ----------------------------------------------------------------------
class AuditPublic(BaseModel):
    seq: int
    at: datetime
    actor: str
    source: str
    method: str
    path: str
    status: int
    error: str
    message: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditPublic:
        return cls(
            seq=entry.seq,
            at=entry.at,
            actor=entry.actor,
            source=entry.source,
            method=entry.method,
            path=entry.path,
            status=entry.status,
            error=entry.error,
            message=entry.message,
        )


class AuditPage(BaseModel):
    items: list[AuditPublic]
    next: int | None = Field(description="Pass as `before` for older entries; null at the end.")


class Health(BaseModel):
    status: Literal["ok"]
    version: str


# Cursors -------------------------------------------------------------------------------
def encode_cursor(owner: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([owner, name]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        owner, name = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(owner, str) and isinstance(name, str)):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInput("the `after` cursor is not one this server gave out") from None
    return owner, name


def check_env_keys(values: dict[str, str]) -> None:
    for key, value in values.items():
        check_env_name(key)
        if "\x00" in value:
            raise InvalidInput(f"the value of {key} contains a NUL character")
