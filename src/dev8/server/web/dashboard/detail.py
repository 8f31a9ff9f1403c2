"""One workspace's page, ``/workspaces/{name}/detail`` (under the name, so that no workspace
name can clash with ``/workspaces/new`` or ``/workspaces/live``): its agent's status, disk
use against the quotas, shared ports, its history with the running operation's progress,
and its backups and snapshots.

It reads and changes through the same service, stores and requests as the API's routes
(``routes.workspaces``, ``routes.ports``, ``routes.backups``, ``routes.operations``). The
history shows the latest operation's progress; while one runs, its new lines and its end come
as server-sent events (``stream``), which ``static/progress-stream.js`` appends, then it has
htmx reload the history.

Its backups and snapshots (make, restore, download) are ``backups``'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from dev8.core.errors import Dev8Error, InvalidInput, NotFound
from dev8.core.naming import VOLUME_ROLES
from dev8.core.quotas import effective_quotas
from dev8.core.states import LIVE
from dev8.core.workspace import PENDING, RUNNING, Operation, Workspace
from dev8.server.context import ServerContext
from dev8.server.deps import Context
from dev8.server.routes import ports as port_routes
from dev8.server.schemas import BackupPublic, VolumePublic
from dev8.server.schemas.ports import PortSharingUpdate
from dev8.server.web.dashboard import stream
from dev8.server.web.dashboard.render import failure, html, is_htmx
from dev8.server.web.dashboard.scope import PageError, PageScope, Scoped
from dev8.store.ports import Sharing

router = APIRouter(include_in_schema=False)
PREFIX = "/workspaces/{name}/detail"
HISTORY_LIMIT = 20
EVENTS_SHOWN = 200
OperationId = Annotated[str, Path(max_length=64)]


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


def backup_roles(backup: BackupPublic) -> list[str]:
    """The volumes a kept backup holds (from its archives' manifests), in the usual order."""
    held = {archive.volume for archive in backup.archives}
    return [role for role in VOLUME_ROLES if role in held]


# Reading ----------------------------------------------------------------------------------
def workspace_of(scope: PageScope, name: str) -> Workspace:
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
    workspace = workspace_of(scope, name)
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
    workspace_of(scope, name)
    return html("detail_history.html", **history_values(context, scope, name))


def _operation(context: ServerContext, scope: PageScope, name: str, operation_id: str) -> str:
    """The id of ``operation_id`` if it is one of the workspace's, else ``PageError``."""
    workspace = workspace_of(scope, name)
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


# Changes ----------------------------------------------------------------------------------
def _done(request: Request, scope: PageScope, name: str, message: str) -> Response:
    """A notice for htmx (and the history refreshed); a browser goes back to the page."""
    if not is_htmx(request):
        return RedirectResponse(f"/workspaces/{name}/detail{scope.query}", status_code=303)
    response = html("_notice.html", error="", message=message)
    response.headers["HX-Trigger"] = "detail-changed"
    return response


async def queue_change(
    request: Request, scope: PageScope, name: str, change: Callable[[], str]
) -> Response:
    """Make ``change`` (which says what it did) and answer with what it says or its error."""
    try:
        message = await run_in_threadpool(change)
    except Dev8Error as error:
        return failure(request, error, viewer=scope.viewer, title="Error", heading="Not done")
    return _done(request, scope, name, message)


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

    return await queue_change(request, scope, name, change)
