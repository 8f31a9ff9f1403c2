"""The backups and snapshots of a workspace's page (``detail``): make them, restore them,
download a backup's archives, through the same kept backups and requests as the API's
``routes.backups``.

The API backs up and restores one volume or all of them, so the volumes checked in a form
become one operation when they are all, else one per volume. A restore first shows a page
that names the volumes it overwrites, whose form then queues it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response

from dev8.core.errors import Dev8Error, InvalidInput, NotFound
from dev8.core.naming import VOLUME_ROLES
from dev8.core.workspace import Action
from dev8.server.deps import Context
from dev8.server.schemas import BackupPublic
from dev8.server.web.dashboard.detail import PREFIX, backup_roles, queue_change, workspace_of
from dev8.server.web.dashboard.render import html
from dev8.server.web.dashboard.scope import PageError, PageScope, Scoped

router = APIRouter(include_in_schema=False)
BackupId = Annotated[str, Path(max_length=64)]
ArchiveName = Annotated[str, Path(max_length=255)]
SnapshotId = Annotated[str, Path(max_length=64)]
Volumes = Annotated[list[str] | None, Query(alias="volume", max_length=len(VOLUME_ROLES) + 1)]


# The volumes a form chose (pure) ----------------------------------------------------------
def chosen_roles(values: list[str] | None) -> list[str]:
    """The volumes checked in a form, in the usual order. A form sends a blank ``volume``
    besides the checked ones, so nothing checked is told from no choice at all (every
    volume, as the API's default)."""
    if not values:
        return list(VOLUME_ROLES)
    checked = {value for value in values if value}
    unknown = sorted(checked - set(VOLUME_ROLES))
    if unknown:
        raise InvalidInput(f"unknown volume {unknown[0][:20]!r}; choose home, workspace or system")
    if not checked:
        raise InvalidInput("choose at least one volume")
    return [role for role in VOLUME_ROLES if role in checked]


def api_volumes(roles: list[str], offered: list[str] | tuple[str, ...] = VOLUME_ROLES) -> list[str]:
    """The API's ``volume`` for each operation the checked ``roles`` make: it takes one volume
    or all, so every ``offered`` one checked is one ``all``, fewer are one each."""
    return ["all"] if set(offered) <= set(roles) else list(roles)


def said(roles: list[str]) -> str:
    """``home, workspace and system``."""
    return " and ".join(filter(None, [", ".join(roles[:-1]), roles[-1]])) if roles else ""


# Pages ------------------------------------------------------------------------------------
def _confirm_page(
    scope: PageScope, name: str, source: str, action: str, roles: list[str]
) -> Response:
    """What a restore of ``roles`` from ``source`` overwrites, and the form that does it."""
    try:
        workspace = scope.requests.service.find(name)
        volumes = {v.role: v.name for v in scope.requests.service.volumes_of(workspace)}
    except Dev8Error as error:
        raise PageError(error) from error
    return html(
        "restore.html",
        title=f"Restore {source} into {name}",
        current="",
        viewer=scope.viewer,
        name=name,
        query=scope.query,
        source=source,
        action=action,
        roles=roles,
        roles_said=said(roles),
        volumes=volumes,
    )


@router.get(PREFIX + "/backups/{backup_id}/restore")  # before the download: not an archive
def detail_confirm_backup_restore(
    context: Context, scope: Scoped, name: str, backup_id: BackupId, volume: Volumes = None
) -> Response:
    workspace = workspace_of(scope, name)
    try:
        roles = chosen_roles(volume)
        held = backup_roles(BackupPublic.of(context.kept_backups.get(workspace, backup_id)))
    except Dev8Error as error:
        raise PageError(error) from error
    chosen = [role for role in roles if role in held]
    if not chosen:
        raise PageError(NotFound(f"backup {backup_id} of {name} holds no {said(roles)} volume"))
    action = f"/workspaces/{name}/detail/backups/{backup_id}/restore{scope.query}"
    return _confirm_page(scope, name, f"backup {backup_id}", action, chosen)


@router.get(PREFIX + "/snapshots/{snapshot_id}/restore")
def detail_confirm_snapshot_restore(
    context: Context, scope: Scoped, name: str, snapshot_id: SnapshotId, volume: Volumes = None
) -> Response:
    try:
        roles = chosen_roles(volume)
        context.kept_backups.snapshot_restore_params(snapshot_id, "all")  # checks the id
    except Dev8Error as error:
        raise PageError(error) from error
    action = f"/workspaces/{name}/detail/snapshots/{snapshot_id}/restore{scope.query}"
    return _confirm_page(scope, name, f"snapshot {snapshot_id[:8]}", action, roles)


@router.get(PREFIX + "/backups/{backup_id}/{file}")
def detail_download(
    context: Context, scope: Scoped, name: str, backup_id: BackupId, file: ArchiveName
) -> Response:
    """One archive of a backup, as the API's download serves it."""
    workspace = workspace_of(scope, name)
    try:
        path = context.kept_backups.archive_path(workspace, backup_id, file)
    except Dev8Error as error:
        raise PageError(error) from error
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


# Changes ----------------------------------------------------------------------------------
async def _form_volumes(request: Request) -> list[str]:
    form = await request.form(max_fields=200)
    return [value for value in form.getlist("volume")[:10] if isinstance(value, str)]


@router.post(PREFIX + "/backup")
async def detail_backup(request: Request, context: Context, scope: Scoped, name: str) -> Response:
    """Queue a backup of the checked volumes, as the API's ``POST backups``: one of all
    three, else one of each."""
    checked = await _form_volumes(request)

    def change() -> str:
        roles = chosen_roles(checked)
        workspace = scope.requests.service.find_known(name)
        kept = context.kept_backups
        every = [kept.new_backup_params(v, "tar.zst", False) for v in api_volumes(roles)]
        for params in every:
            scope.requests.job(workspace, Action.BACKUP, params)
        return f"{name}: backup of {said(roles)} queued."

    return await queue_change(request, scope, name, change)


@router.post(PREFIX + "/snapshot")
async def detail_snapshot(request: Request, scope: Scoped, name: str) -> Response:
    def change() -> str:
        workspace = scope.requests.service.find(name)
        scope.requests.job(workspace, Action.SNAPSHOT, {})
        return f"{name}: snapshot queued."

    return await queue_change(request, scope, name, change)


@router.post(PREFIX + "/backups/{backup_id}/restore")
async def detail_restore_backup(
    request: Request, context: Context, scope: Scoped, name: str, backup_id: BackupId
) -> Response:
    """Queue a restore of the checked volumes the backup holds: one operation of all of
    them, else one of each."""
    checked = await _form_volumes(request)

    def change() -> str:
        roles = chosen_roles(checked)
        workspace = scope.requests.service.find(name)
        kept = context.kept_backups
        held = backup_roles(BackupPublic.of(kept.get(workspace, backup_id)))
        every = [kept.restore_params(workspace, backup_id, v) for v in api_volumes(roles, held)]
        for params in every:
            scope.requests.job(workspace, Action.RESTORE, params)
        restored = said([role for role in roles if role in held])
        return f"{name}: restore of {restored} from backup {backup_id} queued."

    return await queue_change(request, scope, name, change)


@router.post(PREFIX + "/snapshots/{snapshot_id}/restore")
async def detail_restore_snapshot(
    request: Request, context: Context, scope: Scoped, name: str, snapshot_id: SnapshotId
) -> Response:
    checked = await _form_volumes(request)

    def change() -> str:
        roles = chosen_roles(checked)
        workspace = scope.requests.service.find(name)
        kept = context.kept_backups
        every = [kept.snapshot_restore_params(snapshot_id, v) for v in api_volumes(roles)]
        for params in every:
            scope.requests.job(workspace, Action.SNAPSHOT_RESTORE, params)
        return f"{name}: restore of {said(roles)} from snapshot {snapshot_id} queued."

    return await queue_change(request, scope, name, change)
