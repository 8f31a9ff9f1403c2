"""What the REST API accepts and returns, one module per resource. Input models forbid
unknown fields, so a typo is an error instead of a silent default."""

from dev8.server.schemas.accounts import (
    LoginRequest,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from dev8.server.schemas.backups import (
    ArchivePublic,
    BackupCreate,
    BackupPublic,
    SnapshotCreate,
    SnapshotPublic,
    VolumeRestore,
)
from dev8.server.schemas.base import ErrorBody, Input, Public
from dev8.server.schemas.operations import EventPublic, OperationDetail, OperationPublic
from dev8.server.schemas.system import AuditPage, AuditPublic, Health
from dev8.server.schemas.workspaces import (
    RebuildRequest,
    VolumePublic,
    WorkspaceAccepted,
    WorkspaceCreate,
    WorkspacePage,
    WorkspacePublic,
    WorkspaceUpdate,
    check_env_keys,
    decode_cursor,
    encode_cursor,
    workspace_fields,
)

__all__ = [
    "ArchivePublic",
    "AuditPage",
    "AuditPublic",
    "BackupCreate",
    "BackupPublic",
    "ErrorBody",
    "EventPublic",
    "Health",
    "Input",
    "LoginRequest",
    "OperationDetail",
    "OperationPublic",
    "Public",
    "RebuildRequest",
    "SnapshotCreate",
    "SnapshotPublic",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
    "UserCreate",
    "UserPublic",
    "UserUpdate",
    "VolumePublic",
    "VolumeRestore",
    "WorkspaceAccepted",
    "WorkspaceCreate",
    "WorkspacePage",
    "WorkspacePublic",
    "WorkspaceUpdate",
    "check_env_keys",
    "decode_cursor",
    "encode_cursor",
    "workspace_fields",
]
