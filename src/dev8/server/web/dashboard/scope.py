"""Who a dashboard page is for and whose workspaces it shows: the signed-in viewer
(``SignedIn``) and, for the workspace pages, the owner looked at (``Scoped``: an admin may
name another owner with ``?owner=``, anyone else is told there is no such workspace).
Failures here are ``PageError``, answered as the dashboard answers failures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from dev8.core.errors import Dev8Error, NotFound
from dev8.server.deps import Context
from dev8.server.web.dashboard.security import CsrfTokens, Viewer, viewer
from dev8.service.requests import WorkspaceRequests


class PageError(Exception):
    """A ``Dev8Error`` raised while finding who and what a page is about, answered as the
    dashboard answers failures (``render.failure``)."""

    def __init__(self, error: Dev8Error) -> None:
        self.error = error


async def _viewer(request: Request, context: Context) -> Viewer:
    csrf: CsrfTokens = request.app.state.dashboard_csrf
    try:
        return await viewer(request, context, csrf)
    except Dev8Error as error:
        raise PageError(error) from error


SignedIn = Annotated[Viewer, Depends(_viewer)]


@dataclass
class PageScope:
    viewer: Viewer
    owner: str
    requests: WorkspaceRequests
    query: str  # "?owner=..." when an admin looks at another owner's workspaces, else ""


async def _scope(
    context: Context,
    signed_in: SignedIn,
    owner: Annotated[str | None, Query(max_length=255)] = None,
) -> PageScope:
    user = signed_in.user
    if owner is None or owner == user.name:
        owner, query = user.name, ""
    elif not user.is_admin:
        raise PageError(NotFound(f"no workspaces of {owner!r}"))
    else:
        try:
            await run_in_threadpool(context.accounts.user, owner)
        except Dev8Error as error:
            raise PageError(error) from error
        query = f"?owner={quote(owner, safe='')}"
    service = context.service(owner, actor=user.name)
    return PageScope(signed_in, owner, WorkspaceRequests(service, context.policy(user)), query)


Scoped = Annotated[PageScope, Depends(_scope)]
