"""One workspace's page, ``/workspaces/{name}/detail`` (under the name, so that no workspace
name can clash with ``/workspaces/new`` or ``/workspaces/live``): its agent's status, disk
use against the quotas, shared ports, its history with the running operation's progress,
and its backups and snapshots.

It reads and changes through the same service, stores and requests as the API's routes
(``routes.workspaces``, ``routes.ports``, ``routes.backups``, ``routes.operations``). The
history shows the latest operation's progress; while one runs, its new lines and its end come
as server-sent events (``stream``), which ``static/progress-stream.js`` appends, then it has
htmx reload the history.

The API backs up and restores one volume or all of them, so the volumes checked in a form
become one operation when they are all, else one per volume. A restore first shows a page
that names the volumes it overwrites, whose form then queues it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, Response

from dev8.core.errors import Dev8Error, InvalidInput, NotFound
from dev8.core.naming import VOLUME_ROLES
from dev8.core.quotas import effective_quotas
from dev8.core.states import LIVE
from dev8.core.workspace import PENDING, RUNNING, Action, Operation, Workspace
from dev8.server.context import ServerContext
from dev8.server.deps import Context
from dev8.server.routes import ports as port_routes
from dev8.server.schemas import BackupPublic, VolumePublic
from dev8.server.schemas.ports import PortSharingUpdate
from dev8.server.web.dashboard import stream
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
OperationId = Annotated[str, Path(max_length=64)]
Volumes = Annotated[list[str] | None, Query(alias="volume", max_length=len(VOLUME_ROLES) + 1)]


# What the page shows (pure) ---------------------------------------------------------------
@dataclass(frozen=True)
class DiskBar:
    role: str
    volume: str
    used: int | None
    limit: int | None
    quota: bool  # the limit is the volume's quota, not its filesystem's size

    @property
    def label(self) -> str:
        if self.used is None:
            # Only volumes with a quota are measured (the agent's, or a helper's when stopped).
            return "not measured (no quota)" if not self.quota else "not measured yet"
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
        DiskBar(
            v.role,
            v.name,
            v.used_bytes,
            quotas.get(v.role) or v.fs_total_bytes,
            quota=bool(quotas.get(v.role)),
        )
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


def followed(operations: list[Operation]) -> Operation | None:
    """The operation whose progress the history shows: the oldest that has not finished (the
    one under way; those queued after it wait), else the latest."""
    active = [op for op in operations if is_active(op)]
    return active[-1] if active else next(iter(operations), None)


def stream_url(name: str, query: str, operation_id: str, after: int) -> str:
    """The address of ``operation_id``'s progress events after the seq ``after``."""
    join = "&" if query else "?"
    path = f"/workspaces/{name}/detail/operations/{operation_id}/events"
    return f"{path}{query}{join}{urlencode({'after': after})}"


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


def backup_roles(backup: BackupPublic) -> list[str]:
    """The volumes a kept backup holds (from its archives' manifests), in the usual order."""
    held = {archive.volume for archive in backup.archives}
    return [role for role in VOLUME_ROLES if role in held]


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
    shown = followed(operations)
    events = context.store.events(shown.id, 0, EVENTS_SHOWN) if shown else []
    live = shown is not None and is_active(shown)
    after = events[-1].seq if events else 0
    return {
        "name": name,
        "query": scope.query,
        "operations": operations,
        "shown": shown,
        "live": live,
        "stream": stream_url(name, scope.query, shown.id, after) if live and shown else "",
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
        "roles": VOLUME_ROLES,
        "backup_roles": backup_roles,
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
    """The history fragment, reloaded after a change this page made and when the followed
    operation ends."""
    _workspace(scope, name)
    return html("detail_history.html", **history_values(context, scope, name))


def _operation(context: ServerContext, scope: PageScope, name: str, operation_id: str) -> str:
    """The id of ``operation_id`` if it is one of the workspace's, else ``PageError``."""
    workspace = _workspace(scope, name)
    try:
        operation = context.store.get_operation(operation_id)
    except Dev8Error as error:
        raise PageError(error) from error
    if operation.workspace_id != workspace.id:
        raise PageError(NotFound(f"no operation {operation_id} of {name}"))
    return operation.id


@router.get(PREFIX + "/operations/{operation_id}/events")
async def detail_progress(
    request: Request,
    context: Context,
    scope: Scoped,
    name: str,
    operation_id: OperationId,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> Response:
    """The operation's progress lines after the seq ``after`` (or the ``Last-Event-ID`` a
    reconnecting browser sends) and then its end, as server-sent events."""
    found = await run_in_threadpool(_operation, context, scope, name, operation_id)
    slots: stream.StreamSlots = request.app.state.progress_streams
    user = scope.viewer.user.name
    try:
        slots.take(user)
    except Dev8Error as error:
        return failure(request, error)
    start = stream.resume_after(request.headers.get("last-event-id"), after)
    events = stream.progress_events(request, context.store, found, start, when)
    return stream.EventStream(events, on_close=lambda: slots.give_back(user))


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
    workspace = _workspace(scope, name)
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
    request: Request, scope: PageScope, name: str, change: Callable[[], str]
) -> Response:
    """Make ``change`` (which says what it did) and answer with what it says or its error."""
    try:
        message = await run_in_threadpool(change)
    except Dev8Error as error:
        return failure(request, error, viewer=scope.viewer, title="Error", heading="Not done")
    return _done(request, scope, name, message)


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

    return await _queue(request, scope, name, change)


@router.post(PREFIX + "/snapshot")
async def detail_snapshot(request: Request, scope: Scoped, name: str) -> Response:
    def change() -> str:
        workspace = scope.requests.service.find(name)
        scope.requests.job(workspace, Action.SNAPSHOT, {})
        return f"{name}: snapshot queued."

    return await _queue(request, scope, name, change)


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

    return await _queue(request, scope, name, change)


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

    return await _queue(request, scope, name, change)


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

    def change() -> str:
        port, level = sharing_change(port_text, level_text)
        workspace = scope.requests.service.find(name)
        if level is Sharing.PRIVATE:
            port_routes.unshare_port(port, workspace, context)
        else:
            port_routes.share_port(port, PortSharingUpdate(sharing=level), workspace, context)
        return f"{name}: port {port} is {level.value}."

    return await _queue(request, scope, name, change)
