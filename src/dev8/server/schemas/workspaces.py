"""Workspaces: what creating and changing one accepts, what a workspace, a page of them and
their volumes look like. Secret values are accepted (write-only) and never returned:
responses name secrets, nothing more."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from dev8.core.addresses import Addresses
from dev8.core.dotfiles import MAX_URL_LENGTH
from dev8.core.environment import check_env_name, user_secret_names
from dev8.core.errors import InvalidInput
from dev8.core.quotas import MIN_QUOTA
from dev8.core.resources import PRESETS
from dev8.core.workspace import Workspace
from dev8.providers.base import VolumeInfo
from dev8.server.schemas.base import IMAGE_REF, NAME, PRINTABLE, Input
from dev8.server.schemas.operations import OperationPublic
from dev8.service.idle import effective_timeout_s, idle_deadline
from dev8.service.policy import MAX_VALUE_BYTES, MAX_VARIABLES, MAX_VARIABLES_BYTES
from dev8.service.requests import MAX_IDLE_TIMEOUT_S

Size = Literal[tuple(PRESETS)]  # type: ignore[valid-type]
QuotaBytes = Annotated[int, Field(ge=MIN_QUOTA, le=1 << 50)]
PINNED = "A fixed host port, not the server's; members only where DEV8_MEMBER_PIN_PORTS allows."
Value = Annotated[str, Field(max_length=MAX_VALUE_BYTES)]  # and in bytes: ``check_variables``


class WorkspaceCreate(Input):
    name: str = NAME
    image: str | None = Field(None, min_length=1, max_length=512, pattern=IMAGE_REF)
    size: Size | None = None  # type: ignore[valid-type]
    cpus: float | None = Field(None, ge=0.1, le=256)
    memory_mb: int | None = Field(None, ge=256, le=1048576)
    env: dict[str, Value] = Field(
        default_factory=dict,
        max_length=MAX_VARIABLES,
        description=f"At most {MAX_VARIABLES_BYTES} bytes in all, names and values.",
    )
    secrets: dict[str, Value] = Field(
        default_factory=dict,
        max_length=MAX_VARIABLES,
        description=f"Write-only, e.g. GITHUB_TOKEN; at most {MAX_VARIABLES_BYTES} bytes in all.",
    )
    ide_password: str | None = Field(
        None,
        min_length=8,
        max_length=256,
        pattern=PRINTABLE,
        description="Write-only; default: a random one.",
    )
    idle_timeout_s: int | None = Field(None, ge=0, le=MAX_IDLE_TIMEOUT_S)
    dotfiles_repo: str | None = Field(
        None,
        max_length=MAX_URL_LENGTH,
        description='Dotfiles repository for this workspace; null: your account\'s; "": none.',
    )
    ide_port: int | None = Field(None, ge=1024, le=65535, description=PINNED)
    ssh_port: int | None = Field(None, ge=1024, le=65535, description=PINNED)
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
    dotfiles_repo: str | None
    last_activity_at: datetime | None
    idle_stop_after: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, workspace: Workspace, default_idle_s: int, addresses: Addresses) -> WorkspacePublic:
        return cls(**workspace_fields(workspace, default_idle_s, addresses))


def workspace_fields(
    workspace: Workspace, default_idle_s: int, addresses: Addresses
) -> dict[str, Any]:
    """The fields of ``WorkspacePublic`` for ``workspace`` (secret values never included);
    the IDE at the server's address for it (the server relays it)."""
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
        ide_url=addresses.ide(workspace.owner, workspace.name),
        env=workspace.env,
        secret_names=user_secret_names(workspace.secrets),
        idle_timeout_s=workspace.idle_timeout_s,
        effective_idle_timeout_s=effective_timeout_s(workspace, default_idle_s),
        dotfiles_repo=workspace.dotfiles_repo,
        last_activity_at=workspace.last_activity_at,
        idle_stop_after=idle_deadline(workspace, default_idle_s),
        created_at=workspace.created_at,
        updated_at=workspace.updated_at,
    )


class WorkspacePage(BaseModel):
    items: list[WorkspacePublic]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


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

    @classmethod
    def of(cls, volume: VolumeInfo, usage: dict[str, Any]) -> VolumePublic:
        """``volume`` with what its workspace's agent measured of it (``usage``, if any)."""
        measured = {key: usage.get(key) for key in _MEASURED}
        return cls(name=volume.name, role=volume.role, **measured)


_MEASURED = ("used_bytes", "measured_at", "fs_total_bytes", "fs_free_bytes")


# Paging and checks ------------------------------------------------------------------------
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
