"""The workspaces pages: the list (states live through htmx polling), the create form, the
lifecycle buttons and the purge confirmation. Every change goes through ``WorkspaceRequests``,
as the API's do, for the owner the page is scoped to (``scope``). The list comes a page at a
time, as the API's (``?after=NAME``), and may be narrowed to names that start with
``?name_prefix=``.

Each change answers htmx with a notice (and the workspace's new state), and a browser
without JavaScript with a redirect back to the list.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from dev8.core.addresses import Addresses
from dev8.core.errors import Dev8Error, InvalidInput
from dev8.core.resources import PRESETS
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Action, Workspace
from dev8.server.context import ServerContext
from dev8.server.deps import Context
from dev8.server.web.dashboard import forms
from dev8.server.web.dashboard.render import failure, html, is_htmx
from dev8.server.web.dashboard.scope import PageError, PageScope, Scoped, SignedIn

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25  # cards (two kilobytes and six buttons each) a page, as Coder's list
POLL_SECONDS = 3


# What each row shows ---------------------------------------------------------------------
@dataclass(frozen=True)
class ActionButton:
    name: str
    label: str
    style: str = ""
    confirm: str = ""


LIVE_ACTIONS = (
    ActionButton("start", "Start"),
    ActionButton("stop", "Stop"),
    ActionButton("restart", "Restart"),
    ActionButton("rebuild", "Rebuild"),
)
# Buttons that would ask for what is already asked: no Start for a workspace meant to run, no
# Stop or Restart for one meant to be stopped (the API takes them all the same).
_ALREADY = {DesiredState.RUNNING: {"start"}, DesiredState.STOPPED: {"stop", "restart"}}
DONE = {
    "start": "starting",
    "stop": "stopping",
    "restart": "restarting",
    "rebuild": "rebuilding",
    "delete": "removing",
}
_SETTLED = {
    DesiredState.RUNNING: ObservedState.RUNNING,
    DesiredState.STOPPED: ObservedState.STOPPED,
    DesiredState.REMOVED: ObservedState.REMOVED,
}


def delete_button(name: str) -> ActionButton:
    return ActionButton(
        "delete",
        "Delete",
        "danger",
        f"Delete {name}? Its container is removed; its volumes are kept until you purge it.",
    )


@dataclass(frozen=True, slots=True)
class Card:
    """What the list shows of a workspace; ``version`` changes whenever its state does.
    Attributes, not a dict: a template reads a dict's keys only after failing to find an
    attribute of that name, an exception per value shown."""

    name: str
    state: str
    desired: str
    going: bool
    message: str
    version: str
    removed: bool
    size: str
    image: str
    ide_url: str
    actions: list[tuple[ActionButton, str]]  # each with its address, ``?owner=`` included


def row(workspace: Workspace, addresses: Addresses, query: str = "") -> Card:
    """``workspace``'s card; ``query`` ends its actions' addresses (made here: building
    strings in a template is several times dearer)."""
    state, desired = workspace.observed_state.value, workspace.desired_state.value
    message = workspace.status_message or ""
    removed = workspace.desired_state is DesiredState.REMOVED
    going = _SETTLED.get(workspace.desired_state) not in (workspace.observed_state, None)
    wanted = [a for a in LIVE_ACTIONS if a.name not in _ALREADY.get(workspace.desired_state, ())]
    actions = () if removed else (*wanted, delete_button(workspace.name))
    path = f"/workspaces/{quote(workspace.name, safe='')}"
    return Card(
        name=workspace.name,
        state=state,
        desired=desired,
        going=going,
        message=message,
        version=hashlib.sha256(f"{state}|{desired}|{message}".encode()).hexdigest()[:10],
        removed=removed,
        size=workspace.resources.describe(),
        image=workspace.image_ref,
        ide_url=addresses.ide(workspace.owner, workspace.name),
        actions=[(action, f"{path}/{action.name}{query}") for action in actions],
    )


@dataclass(frozen=True)
class ListPage:
    """Which page of the owner's workspaces a list shows: the names after ``after`` that
    start with ``prefix`` ("" for either: from the first, any name)."""

    after: str = ""
    prefix: str = ""


def _wanted_page(
    after: Annotated[str, Query(max_length=255)] = "",
    name_prefix: Annotated[str, Query(max_length=63)] = "",
) -> ListPage:
    return ListPage(after, name_prefix)


WantedPage = Annotated[ListPage, Depends(_wanted_page)]


def listed(context: ServerContext, owner: str, wanted: ListPage) -> list[Workspace]:
    """One page of the owner's workspaces and the first of the next, if any; removed ones
    whose volumes are kept included (the store's listing, as the API's)."""
    return context.store.page(
        owner=owner,
        name_prefix=wanted.prefix or None,
        include_removed=True,
        after=(owner, wanted.after) if wanted.after else None,
        limit=PAGE_SIZE + 1,
    )


def page_query(owner: str | None, wanted: ListPage) -> str:
    """ "?owner=...&after=...&name_prefix=..." of a page, without what is the default."""
    values = {"owner": owner, "after": wanted.after, "name_prefix": wanted.prefix}
    query = urlencode({key: value for key, value in values.items() if value})
    return "?" + query if query else ""


def addresses_for(request: Request, context: ServerContext) -> Addresses:
    return context.addresses(str(request.base_url))


def list_values(
    request: Request, context: Context, scope: PageScope, wanted: ListPage
) -> dict[str, Any]:
    found = listed(context, scope.owner, wanted)
    page, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    addresses = addresses_for(request, context)
    other = scope.owner if scope.query else None
    first = ListPage(prefix=wanted.prefix) if wanted.after else None
    after = ListPage(page[-1].name, wanted.prefix) if more else None
    return {
        "viewer": scope.viewer,
        "owner": scope.owner,
        "query": scope.query,
        "wanted": wanted,
        "rows": [row(workspace, addresses, scope.query) for workspace in page],
        "this_page": page_query(other, wanted),
        "first_page": "/workspaces" + page_query(other, first) if first else "",
        "next_page": "/workspaces" + page_query(other, after) if after else "",
    }


# Pages ---------------------------------------------------------------------------------
@router.get("/")
async def home() -> Response:
    return RedirectResponse("/workspaces", status_code=303)


@router.get("/workspaces")
def workspaces_page(
    request: Request, context: Context, scope: Scoped, wanted: WantedPage
) -> Response:
    values = list_values(request, context, scope, wanted)
    return html(
        "workspaces.html",
        title="Workspaces",
        current="workspaces",
        error="",
        message="",
        list_oob=False,
        **values,
    )


@router.get("/workspaces/live")
def workspaces_live(
    request: Request,
    context: Context,
    scope: Scoped,
    wanted: WantedPage,
    shown: Annotated[list[str] | None, Query(max_length=100)] = None,
) -> Response:
    """What changed on the ``wanted`` page since it showed ``shown`` (``name.version`` of
    each row): the states that changed, or the whole list when workspaces came or went; 204
    if nothing."""
    values = list_values(request, context, scope, wanted)
    had = dict(entry.rpartition(".")[::2] for entry in (shown or ())[:PAGE_SIZE])
    rows: list[Card] = values["rows"]
    if set(had) != {card.name for card in rows}:
        return html("_live.html", **{**values, "list_oob": True})
    changed = [card for card in rows if had[card.name] != card.version]
    if not changed:
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    return html("_live.html", **{**values, "rows": changed, "list_oob": False})


def _back(scope: PageScope) -> Response:
    return RedirectResponse("/workspaces" + scope.query, status_code=303)


async def _change(
    request: Request, context: ServerContext, scope: PageScope, name: str, action: str
) -> Response:
    try:
        if action == "delete":
            accepted = await run_in_threadpool(scope.requests.remove, name)
        else:
            accepted = await run_in_threadpool(scope.requests.action, name, Action(action))
        workspace = await run_in_threadpool(context.store.get, accepted.workspace.id)
    except Dev8Error as error:
        return failure(request, error, viewer=scope.viewer, title="Error", heading="Not done")
    if not is_htmx(request):
        return _back(scope)
    return html(
        "_action_done.html",
        error="",
        message=f"{name}: {DONE[action]}.",
        row=row(workspace, addresses_for(request, context), scope.query),
        viewer=scope.viewer,
        query=scope.query,
    )


def _action_route(action: str) -> None:
    async def change(request: Request, context: Context, scope: Scoped, name: str) -> Response:
        return await _change(request, context, scope, name, action)

    change.__name__ = f"{action}_workspace_page"
    router.add_api_route(f"/workspaces/{{name}}/{action}", change, methods=["POST"])


for _action in DONE:
    _action_route(_action)


@router.get("/workspaces/{name}/purge")
def purge_page(context: Context, scope: Scoped, name: str) -> Response:
    service = scope.requests.service
    try:
        volumes = service.volumes_of(service.find_known(name))
    except Dev8Error as error:
        raise PageError(error) from error
    return html(
        "purge.html",
        title=f"Purge {name}",
        current="",
        viewer=scope.viewer,
        name=name,
        query=scope.query,
        volumes=volumes,
        volume_list=", ".join(volume.name for volume in volumes) or "its record",
    )


@router.post("/workspaces/{name}/purge")
async def purge(request: Request, scope: Scoped, name: str) -> Response:
    form = await request.form(max_fields=200)
    try:
        if form.get("confirm") != name:
            raise InvalidInput(f"type the workspace's name, {name}, to purge it")
        await run_in_threadpool(scope.requests.remove, name, True)
    except Dev8Error as error:
        return failure(request, error, viewer=scope.viewer, title="Error", heading="Not purged")
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": "/workspaces" + scope.query})
    return _back(scope)


# The create form ---------------------------------------------------------------------------
def _form_page(
    context: ServerContext,
    scope: PageScope,
    fields: forms.CreateFields,
    error: str = "",
    status: int = 200,
) -> Response:
    names = list(fields.secret_names) or [""] * forms.SECRET_ROWS
    return html(
        "new.html",
        status,
        title="New workspace",
        current="new",
        viewer=scope.viewer,
        owner=scope.owner,
        query=scope.query,
        error=error,
        fields=fields,
        presets=PRESETS,
        images=context.settings.image_choices(),
        default_idle_minutes=context.settings.idle_timeout_s // 60,
        secret_names=names,
        secrets_dropped=any(fields.secret_values),
        next_index=len(names),
    )


@router.get("/workspaces/new")
def new_page(context: Context, scope: Scoped) -> Response:
    images = context.settings.image_choices()
    return _form_page(context, scope, forms.CreateFields(image=images[0] if images else ""))


@router.get("/workspaces/new/secret-row")
def secret_row(_viewer: SignedIn, index: Annotated[int, Query(ge=0, le=200)] = 0) -> Response:
    """One more name/value row for the form's secrets (and the button, for the next)."""
    more = {"more_oob": True, "next_index": index + 1}
    return html("_secret_row.html", index=index, secret_name="", **more)


@router.post("/workspaces/new")
async def create(request: Request, context: Context, scope: Scoped) -> Response:
    form = await request.form(max_fields=200)
    text = {key: value for key, value in form.items() if isinstance(value, str)}
    names = [value for value in form.getlist("secret_name") if isinstance(value, str)]
    values = [value for value in form.getlist("secret_value") if isinstance(value, str)]
    fields = forms.fields_of(text, names, values)
    try:
        wanted = forms.create_request(fields, context.settings.image_choices())
        await run_in_threadpool(scope.requests.create, wanted)
    except Dev8Error as error:
        if is_htmx(request) or "text/html" not in request.headers.get("accept", ""):
            return failure(request, error)
        request.state.error = error
        return _form_page(context, scope, fields, error.message, error.http_status)
    # Its page, where the creation and the first start stream their progress as they run.
    detail = f"/workspaces/{quote(wanted.name, safe='')}/detail{scope.query}"
    return RedirectResponse(detail, status_code=303)
