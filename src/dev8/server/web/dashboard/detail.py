"""One workspace's page, ``/workspaces/{name}/detail`` (under the name, so that no workspace
name can clash with ``/workspaces/new`` or ``/workspaces/live``): its agent's status, disk
use against the quotas, shared ports, its history with the running operation's progress,
and its backups and snapshots.

It reads and changes through the same service, stores and requests as the API's routes
(``routes.workspaces``, ``routes.ports``, ``routes.backups``, ``routes.operations``). The
running operation's progress is a fragment htmx polls every 2 s (htmx's SSE extension is not
vendored and the CSP allows no inline script); it stops polling once nothing runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from dev8.core.errors import Dev8Error, InvalidInput
from dev8.core.quotas import effective_quotas
from dev8.core.states import LIVE
from dev8.core.workspace import PENDING, RUNNING, Action, Operation, Workspace
from dev8.server.context import ServerContext
from dev8.server.deps import Context
from dev8.server.routes import ports as port_routes
from dev8.server.schemas import BackupPublic, VolumePublic
from dev8.server.schemas.ports import PortSharingUpdate
from dev8.server.web.dashboard.render import failure, html, is_htmx
from dev8.server.web.dashboard.workspaces import PageError, PageScope, Scoped
from dev8.store.ports import Sharing

router = APIRouter(include_in_schema=False)
PREFIX = "/workspaces/{name}/detail"
HISTORY_LIMIT = 20
EVENTS_SHOWN = 200
BackupId = Annotated[str, Path(max_length=64)]
ArchiveName = Annotated[str, Path(max_length=255)]
SnapshotId = Annotated[str, Path(max_length=64)]
WHAT_RESTORE_REPLACES = "its home, workspace and system volumes (those the copy holds)"


# What the page shows (pure) ---------------------------------------------------------------
@dataclass(frozen=True)
class DiskBar:
    role: str
    volume: str
    used: int | None
    limit: int | None

    @property
    def label(self) -> str:
        if self.used is None:
            return "not measured (the workspace is not running)"
        if not self.limit:
            return f"{human_bytes(self.used)} used"
        percent = round(100 * self.used / self.limit)
        return f"{human_bytes(self.used)} of {human_bytes(self.limit)} ({percent}%)"


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def disk_bars(workspace: Workspace, volumes: list[VolumePublic]) -> list[DiskBar]:
    """Each volume's use against its quota (else the filesystem's size)."""
    quotas = effective_quotas(workspace.quotas)
    return [
        DiskBar(v.role, v.name, v.used_bytes, quotas.get(v.role) or v.fs_total_bytes)
        for v in volumes
    ]


def when(moment: float | datetime | None) -> str:
    if moment is None:
        return "never"
    if isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def agent_view(status: dict[str, Any]) -> dict[str, Any]:
    """The parts of the agent's status the page shows."""
    activity = status.get("activity") or {}
    services = status.get("services") or {}
    return {
        "services": [
            {"name": name, "state": s.get("state", "?"), "restarts": s.get("restarts", 0)}
            for name, s in sorted(services.items())
        ],
        "ssh_sessions": activity.get("ssh_sessions", 0),
        "ide_connections": activity.get("ide_connections", 0),
        "last_activity": when(activity.get("last_activity_at")),
        "dotfiles": status.get("dotfiles"),
        "health": status.get("health"),
    }


def is_active(operation: Operation) -> bool:
    return operation.result in (PENDING, RUNNING)


# Reading ----------------------------------------------------------------------------------
def _workspace(scope: PageScope, name: str) -> Workspace:
    try:
        return scope.requests.service.find_known(name)
    except Dev8Error as error:
        raise PageError(error) from error


def _agent(scope: PageScope, workspace: Workspace) -> tuple[dict[str, Any] | None, str]:
    """The agent's status as the API's ``status`` reads it, or why there is none."""
    if workspace.observed_state not in LIVE:
        return (
            None,
            f"The workspace is {workspace.observed_state.value}: its agent reports nothing.",
        )
    try:
        return agent_view(scope.requests.service.agent_status_of(workspace)), ""
    except Dev8Error as error:
        return None, f"Its agent did not answer: {error.message}"


def _volumes(scope: PageScope, workspace: Workspace) -> list[VolumePublic]:
    """As the API's ``volumes``."""
    service = scope.requests.service
    usage = service.disk_usage(workspace)
    return [VolumePublic.of(v, usage.get(v.role, {})) for v in service.volumes_of(workspace)]


def _snapshots(context: ServerContext, scope: PageScope, name: str) -> tuple[list, str]:
    try:
        return context.kept_backups.snapshots(scope.requests.service).list(name), ""
    except Dev8Error as error:
        return [], error.message


def history_values(context: ServerContext, scope: PageScope, name: str) -> dict[str, Any]:
    operations = scope.requests.service.history(name, HISTORY_LIMIT)
    active = next((op for op in operations if is_active(op)), None)
    events = context.store.events(active.id, 0, EVENTS_SHOWN) if active else []
    return {
        "name": name,
        "query": scope.query,
        "operations": operations,
        "active": active,
        "events": events,
        "when": when,
    }


def page_values(context: ServerContext, scope: PageScope, name: str) -> dict[str, Any]:
    workspace = _workspace(scope, name)
    removed = workspace.desired_state.value == "removed"
    agent, agent_note = _agent(scope, workspace)
    subdomains = bool(context.settings.apps_domain)
    shared = [] if removed else port_routes.list_ports(workspace, context)
    backups = [BackupPublic.of(b) for b in context.kept_backups.list(workspace)]
    snapshots, snapshot_note = ([], "") if removed else _snapshots(context, scope, name)
    return {
        "title": name,
        "current": "",
        "viewer": scope.viewer,
        "owner": scope.owner,
        "query": scope.query,
        "workspace": workspace,
        "removed": removed,
        "agent": agent,
        "agent_note": agent_note,
        "disks": disk_bars(workspace, _volumes(scope, workspace)),
        "subdomains": subdomains,
        "ports": shared,
        "levels": [level.value for level in Sharing],
        "backups": backups,
        "snapshots": snapshots,
        "snapshot_note": snapshot_note,
        "replaces": WHAT_RESTORE_REPLACES,
        "human_bytes": human_bytes,
        **history_values(context, scope, name),
    }


# Pages ------------------------------------------------------------------------------------
@router.get(PREFIX)
def detail_page(context: Context, scope: Scoped, name: str) -> Response:
    try:
        values = page_values(context, scope, name)
    except Dev8Error as error:
        raise PageError(error) from error
    return html("detail.html", error="", message="", **values)


@router.get(PREFIX + "/history")
def detail_history(context: Context, scope: Scoped, name: str) -> Response:
    """The history fragment; polled every 2 s while an operation is pending or running."""
    _workspace(scope, name)
    return html("detail_history.html", **history_values(context, scope, name))


@router.get(PREFIX + "/backups/{backup_id}/{file}")
def detail_download(
    context: Context, scope: Scoped, name: str, backup_id: BackupId, file: ArchiveName
) -> Response:
    """One archive of a backup, as the API's download serves it."""
    workspace = _workspace(scope, name)
    try:
        path = context.kept_backups.archive_path(workspace, backup_id, file)
    except Dev8Error as error:
        raise PageError(error) from error
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


# Changes ----------------------------------------------------------------------------------
def _done(request: Request, scope: PageScope, name: str, message: str) -> Response:
    """A notice for htmx (and the history refreshed); a browser goes back to the page."""
    if not is_htmx(request):
        return RedirectResponse(f"/workspaces/{name}/detail{scope.query}", status_code=303)
    response = html("_notice.html", error="", message=message)
    response.headers["HX-Trigger"] = "detail-changed"
    return response


async def _queue(
    request: Request, scope: PageScope, name: str, message: str, change: Any
) -> Response:
    try:
        await run_in_threadpool(change)
    except Dev8Error as error:
        return failure(request, error, viewer=scope.viewer, title="Error", heading="Not done")
    return _done(request, scope, name, message)


@router.post(PREFIX + "/backup")
async def detail_backup(request: Request, context: Context, scope: Scoped, name: str) -> Response:
    """Queue a backup of every volume, as the API's ``POST backups`` with its defaults."""

    def change() -> None:
        workspace = scope.requests.service.find_known(name)
        params = context.kept_backups.new_backup_params("all", "tar.zst", False)
        scope.requests.job(workspace, Action.BACKUP, params)

    return await _queue(request, scope, name, f"{name}: backup queued.", change)


@router.post(PREFIX + "/snapshot")
async def detail_snapshot(request: Request, scope: Scoped, name: str) -> Response:
    def change() -> None:
        workspace = scope.requests.service.find(name)
        scope.requests.job(workspace, Action.SNAPSHOT, {})

    return await _queue(request, scope, name, f"{name}: snapshot queued.", change)


@router.post(PREFIX + "/backups/{backup_id}/restore")
async def detail_restore_backup(
    request: Request, context: Context, scope: Scoped, name: str, backup_id: BackupId
) -> Response:
    def change() -> None:
        workspace = scope.requests.service.find(name)
        params = context.kept_backups.restore_params(workspace, backup_id, "all")
        scope.requests.job(workspace, Action.RESTORE, params)

    message = f"{name}: restore of backup {backup_id} queued."
    return await _queue(request, scope, name, message, change)


@router.post(PREFIX + "/snapshots/{snapshot_id}/restore")
async def detail_restore_snapshot(
    request: Request, context: Context, scope: Scoped, name: str, snapshot_id: SnapshotId
) -> Response:
    def change() -> None:
        workspace = scope.requests.service.find(name)
        params = context.kept_backups.snapshot_restore_params(snapshot_id, "all")
        scope.requests.job(workspace, Action.SNAPSHOT_RESTORE, params)

    message = f"{name}: restore of snapshot {snapshot_id} queued."
    return await _queue(request, scope, name, message, change)


def sharing_change(port_text: str, level_text: str) -> tuple[int, Sharing]:
    """The form's port and level, checked as the API's path and body are."""
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InvalidInput(f"port {port_text[:10]!r} is not a number from 1 to 65535")
    try:
        return int(port_text), Sharing(level_text)
    except ValueError:
        levels = ", ".join(level.value for level in Sharing)
        raise InvalidInput(f"sharing {level_text[:20]!r} is not one of {levels}") from None


@router.post(PREFIX + "/ports")
async def detail_share_port(
    request: Request, context: Context, scope: Scoped, name: str
) -> Response:
    """Share a port (or make it private again) with the API's ``PUT``/``DELETE ports``."""
    form = await request.form(max_fields=200)
    port_text, level_text = str(form.get("port", "")).strip(), str(form.get("sharing", ""))

    def change() -> None:
        port, level = sharing_change(port_text, level_text)
        workspace = scope.requests.service.find(name)
        if level is Sharing.PRIVATE:
            port_routes.unshare_port(port, workspace, context)
        else:
            port_routes.share_port(port, PortSharingUpdate(sharing=level), workspace, context)

    message = f"{name}: port {port_text} is {level_text}."
    return await _queue(request, scope, name, message, change)
