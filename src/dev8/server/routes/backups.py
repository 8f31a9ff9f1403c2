"""/api/v1/workspaces/{name}/backups and /snapshots: volume copies the server makes and
keeps. Making and restoring them are queued operations (202, like every change); listing
and downloading answer at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse, Response

from dev8.core.workspace import Action
from dev8.server.deps import Context, KnownWorkspace, OwnedWorkspace, Scoped
from dev8.server.routes import ERRORS, accepted_response
from dev8.server.schemas import (
    BackupCreate,
    BackupPublic,
    SnapshotCreate,
    SnapshotPublic,
    VolumeRestore,
    WorkspaceAccepted,
)

router = APIRouter(prefix="/api/v1/workspaces", tags=["backups"])
BackupId = Annotated[str, Path(max_length=64, description="A backup's id, from the listing.")]
ArchiveName = Annotated[str, Path(max_length=255, description="An archive's file name.")]
SnapshotId = Annotated[str, Path(max_length=64, description="A snapshot id, or latest.")]


@router.get("/{name}/backups", response_model=list[BackupPublic], responses=ERRORS)
def list_backups(workspace: KnownWorkspace, context: Context) -> list[BackupPublic]:
    """The backups the server keeps of the workspace, oldest first."""
    return [BackupPublic.of(backup) for backup in context.kept_backups.list(workspace)]


@router.post("/{name}/backups", status_code=202, response_model=WorkspaceAccepted, responses=ERRORS)
def create_backup(
    workspace: KnownWorkspace, scope: Scoped, context: Context, body: BackupCreate | None = None
) -> WorkspaceAccepted:
    """Queue a backup: one archive per volume with its manifest, kept by the server. The
    operation's outcome names the backup. A running workspace's backup is crash-consistent
    unless ``stop`` is set."""
    body = body or BackupCreate()
    params = context.kept_backups.new_backup_params(body.volume, body.format, body.stop)
    return accepted_response(scope.requests.job(workspace, Action.BACKUP, params), context)


@router.get(
    "/{name}/backups/{backup_id}/{file}",
    response_class=FileResponse,
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
def download_archive(
    workspace: KnownWorkspace, context: Context, backup_id: BackupId, file: ArchiveName
) -> Any:
    """One archive of a backup, as the file `dev8 restore --from` and `tar` read."""
    path = context.kept_backups.archive_path(workspace, backup_id, file)
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.delete("/{name}/backups/{backup_id}", status_code=204, responses=ERRORS)
def delete_backup(workspace: KnownWorkspace, context: Context, backup_id: BackupId) -> Response:
    context.kept_backups.delete(workspace, backup_id)
    return Response(status_code=204)


@router.post(
    "/{name}/backups/{backup_id}/restore",
    status_code=202,
    response_model=WorkspaceAccepted,
    responses=ERRORS,
)
def restore_backup(
    workspace: OwnedWorkspace,
    scope: Scoped,
    context: Context,
    backup_id: BackupId,
    body: VolumeRestore | None = None,
) -> WorkspaceAccepted:
    """Queue a restore of the backup's volumes (or one of them) into the workspace. Every
    archive is checked to the end first; the previous data stays until all are in."""
    volume = (body or VolumeRestore()).volume
    params = context.kept_backups.restore_params(workspace, backup_id, volume)
    return accepted_response(scope.requests.job(workspace, Action.RESTORE, params), context)


@router.get("/{name}/snapshots", response_model=list[SnapshotPublic], responses=ERRORS)
def list_snapshots(workspace: OwnedWorkspace, scope: Scoped, context: Context) -> Any:
    """The workspace's snapshots in the server's repository, oldest first."""
    snapshots = context.kept_backups.snapshots(scope.service).list(workspace.name)
    return [
        SnapshotPublic(id=s.id, short_id=s.short_id, time=s.time, volumes=s.roles)
        for s in snapshots
    ]


@router.post(
    "/{name}/snapshots", status_code=202, response_model=WorkspaceAccepted, responses=ERRORS
)
def create_snapshot(
    workspace: OwnedWorkspace, scope: Scoped, context: Context, body: SnapshotCreate | None = None
) -> WorkspaceAccepted:
    """Queue an incremental snapshot of all three volumes; with ``keep_*``, the snapshots
    that policy does not keep are removed afterwards."""
    params = (body or SnapshotCreate()).model_dump(exclude_none=True)
    return accepted_response(scope.requests.job(workspace, Action.SNAPSHOT, params), context)


@router.post(
    "/{name}/snapshots/{snapshot_id}/restore",
    status_code=202,
    response_model=WorkspaceAccepted,
    responses=ERRORS,
)
def restore_snapshot(
    workspace: OwnedWorkspace,
    scope: Scoped,
    context: Context,
    snapshot_id: SnapshotId,
    body: VolumeRestore | None = None,
) -> WorkspaceAccepted:
    """Queue putting a snapshot's volumes (or one) back, staged and swapped in like a
    restore from a backup."""
    volume = (body or VolumeRestore()).volume
    params = context.kept_backups.snapshot_restore_params(snapshot_id, volume)
    return accepted_response(
        scope.requests.job(workspace, Action.SNAPSHOT_RESTORE, params), context
    )
