"""Authentication and authorization, in one place: routes declare what they need with these
``Annotated`` aliases and never check roles or ownership themselves. (Dependencies that do
no I/O are ``async``: FastAPI would run a plain one in a worker thread, a cost paid on every
request.)

- ``CurrentUser``: a valid, unexpired, unrevoked API token (``Authorization: Bearer ...``)
  of a user who is not disabled (``token_user``, which browser sessions go through too).
- ``AdminUser``: the same, with the admin role; a member gets 403.
- ``Scoped``: the workspaces of one owner: the caller's own, or (admins only) anyone's via
  ``?owner=``. A member naming another owner gets 404, as if nothing were there, so that
  the existence of other users' workspaces is never revealed.
- ``OwnedWorkspace``: the workspace ``{name}`` within that scope, or 404;
  ``KnownWorkspace`` also a removed one whose volumes were kept.
- ``VisibleOperation``, ``VisibleUser``, ``TokenOwner``: an operation, a user, whose tokens;
  another user's only for an admin (404 for a member).
- ``UserChange``: a change to a user the caller may make: only admins change roles and
  disable or enable users, and a member changing their password gives the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from dev8.core.errors import Forbidden, NotFound, Unauthorized
from dev8.core.users import ApiToken, User, require_enabled
from dev8.core.workspace import Operation, Workspace
from dev8.server.context import ServerContext
from dev8.server.ratelimit import checked_password
from dev8.server.schemas import UserUpdate
from dev8.service.accounts import require_admin
from dev8.service.requests import WorkspaceRequests
from dev8.service.workspaces import WorkspaceService

_bearer = HTTPBearer(auto_error=False, description="An API token from `dev8 login`.")


async def _context(connection: HTTPConnection) -> ServerContext:
    return connection.app.state.context


Context = Annotated[ServerContext, Depends(_context)]


async def _current_user(
    request: Request,
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None:
        raise Unauthorized(LOG_IN_FIRST)
    found = await token_user(context, credentials.credentials)
    request.state.user, request.state.token = found
    return found[0]


LOG_IN_FIRST = "log in first: `dev8 login URL`, or send Authorization: Bearer TOKEN"


async def token_user(context: ServerContext, secret: str) -> tuple[User, ApiToken]:
    """The user and token of an API token (or a browser session's token); ``Unauthorized``
    unless it is valid now and its user is not disabled."""
    found = context.accounts.cached_token(secret)
    if found is None:
        found = await run_in_threadpool(context.accounts.verify_token, secret)
    require_enabled(found[0])
    return found


async def bearer_user(connection: HTTPConnection, context: ServerContext) -> User:
    """The user of ``Authorization: Bearer TOKEN`` on any connection, WebSockets included
    (``CurrentUser`` is for plain HTTP routes, where it also documents the scheme)."""
    scheme, _, secret = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized(LOG_IN_FIRST)
    user, token = await token_user(context, secret.strip())
    connection.state.user, connection.state.token = user, token
    return user


CurrentUser = Annotated[User, Depends(_current_user)]


async def _current_token(request: Request, _user: CurrentUser) -> ApiToken:
    return request.state.token


CurrentToken = Annotated[ApiToken, Depends(_current_token)]


async def _admin(user: CurrentUser) -> User:
    return require_admin(user)


AdminUser = Annotated[User, Depends(_admin)]


@dataclass
class Scope:
    user: User
    owner: str | None  # None: every owner (an admin's listing)
    service: WorkspaceService
    requests: WorkspaceRequests


OwnerParam = Annotated[
    str | None,
    Query(max_length=255, description="Whose workspaces (admins only); default: your own."),
]


async def _scope(context: Context, user: CurrentUser, owner: OwnerParam = None) -> Scope:
    if owner is not None and owner != user.name:
        if not user.is_admin:
            raise NotFound(f"no workspaces of {owner!r}")
        await run_in_threadpool(context.accounts.user, owner)  # NotFound: no such user
    service = context.service(owner or user.name, actor=user.name)
    return Scope(user, service.owner, service, WorkspaceRequests(service, context.policy(user)))


Scoped = Annotated[Scope, Depends(_scope)]


async def _listing_scope(context: Context, user: CurrentUser, owner: OwnerParam = None) -> Scope:
    """Like ``Scoped``, but an admin who names no owner lists everyone's workspaces."""
    scope = await _scope(context, user, owner)
    if user.is_admin and owner is None:
        scope.owner = None
    return scope


ListingScope = Annotated[Scope, Depends(_listing_scope)]
WorkspaceName = Annotated[str, Path(max_length=255, description="The workspace's name.")]


def _owned_workspace(scope: Scoped, name: WorkspaceName) -> Workspace:
    return scope.service.find(name)


OwnedWorkspace = Annotated[Workspace, Depends(_owned_workspace)]


def _known_workspace(scope: Scoped, name: WorkspaceName) -> Workspace:
    """Like ``OwnedWorkspace``, including a removed workspace whose volumes were kept."""
    return scope.service.find_known(name)


KnownWorkspace = Annotated[Workspace, Depends(_known_workspace)]


def _visible_operation(
    context: Context,
    user: CurrentUser,
    operation_id: Annotated[str, Path(max_length=64)],
) -> Operation:
    try:
        operation = context.store.get_operation(operation_id)
    except NotFound:
        operation = None
    if operation is None or (operation.owner != user.name and not user.is_admin):
        raise NotFound(f"no operation {operation_id}")
    return operation


VisibleOperation = Annotated[Operation, Depends(_visible_operation)]


def _visible_user(
    context: Context, user: CurrentUser, user_name: Annotated[str, Path(max_length=255)]
) -> User:
    """Yourself, or anyone for an admin; another user is a 404 for a member."""
    if user_name != user.name and not user.is_admin:
        raise NotFound(f"no user named {user_name!r}")
    return context.accounts.user(user_name)


VisibleUser = Annotated[User, Depends(_visible_user)]


def _token_owner(
    context: Context,
    user: CurrentUser,
    user_name: Annotated[
        str | None, Query(alias="user", max_length=255, description="Admins: whose tokens.")
    ] = None,
) -> User:
    """The caller, or (admins only) the user named by ``?user=``."""
    if user_name is None or user_name == user.name:
        return user
    if not user.is_admin:
        raise NotFound(f"no user named {user_name!r}")
    return context.accounts.user(user_name)


TokenOwner = Annotated[User, Depends(_token_owner)]


def _user_change(
    body: UserUpdate, _target: VisibleUser, user: CurrentUser, context: Context, request: Request
) -> UserUpdate:
    """``body``, if the caller may make that change to the ``VisibleUser``."""
    if user.is_admin:
        return body
    if body.role is not None:
        raise Forbidden("only an admin may change roles")
    if body.disabled is not None:
        raise Forbidden("only an admin may disable or enable users")
    if body.password is not None:
        try:
            checked_password(request, context.accounts, user.name, body.current_password or "")
        except Unauthorized:
            raise Forbidden("current_password is wrong or missing") from None
    return body


UserChange = Annotated[UserUpdate, Depends(_user_change)]
