"""/api/v1/auth, /users and /tokens: logging in, users (admins manage them, disable and
enable them) and API tokens (shown once, stored hashed, revocable, expiring)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from dev8.core.errors import Forbidden
from dev8.core.states import DesiredState, ObservedState
from dev8.core.users import User
from dev8.core.workspace import Action
from dev8.server.context import ServerContext
from dev8.server.deps import (
    AdminUser,
    Context,
    CurrentToken,
    CurrentUser,
    TokenOwner,
    UserChange,
    VisibleUser,
)
from dev8.server.ratelimit import checked_password
from dev8.server.routes import ERRORS
from dev8.server.schemas import (
    LoginRequest,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserPublic,
)
from dev8.service.requests import WorkspaceRequests

router = APIRouter(prefix="/api/v1", tags=["users and tokens"])


def _issue(context: ServerContext, user: User, name: str, days: int | None) -> TokenCreated:
    token, secret = context.accounts.issue_token(user, name, days or context.settings.token_days)
    return TokenCreated(**TokenPublic.of(token).model_dump(), token=secret, user=user.name)


@router.post("/auth/login", status_code=201, response_model=TokenCreated, responses=ERRORS)
def login(body: LoginRequest, request: Request, context: Context) -> TokenCreated:
    """Exchange a user name and password for a new API token (shown once); 403 when
    password sign-in is turned off (``DEV8_PASSWORD_LOGIN=false``), 429 with Retry-After
    after too many failures for the account or from the client's address."""
    if not context.settings.password_login:
        raise Forbidden("signing in with a password is turned off here; sign in from a browser")
    request.state.claimed_user = body.username
    user = checked_password(request, context.accounts, body.username, body.password)
    request.state.user = user
    return _issue(context, user, body.token_name, body.expires_in_days)


@router.get("/users/me", response_model=UserPublic, responses=ERRORS)
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.of(user)


@router.get("/users", response_model=list[UserPublic], responses=ERRORS)
def list_users(_admin: AdminUser, context: Context) -> list[UserPublic]:
    return [UserPublic.of(user) for user in context.store.users.list()]


@router.post("/users", status_code=201, response_model=UserPublic, responses=ERRORS)
def create_user(body: UserCreate, _admin: AdminUser, context: Context) -> UserPublic:
    return UserPublic.of(context.accounts.create_user(body.name, body.password, body.role))


@router.get("/users/{user_name}", response_model=UserPublic, responses=ERRORS)
def get_user(target: VisibleUser) -> UserPublic:
    return UserPublic.of(target)


@router.patch("/users/{user_name}", response_model=UserPublic, responses=ERRORS)
def update_user(
    body: UserChange,
    target: VisibleUser,
    user: CurrentUser,
    token: CurrentToken,
    context: Context,
) -> UserPublic:
    """Your own password (with ``current_password``) and SSH keys; admins also change roles,
    reset anyone's password, and disable or enable a user (409 for themselves or the last
    enabled admin). A new password revokes the user's tokens but the one of this request."""
    changed = context.accounts.change(
        target,
        password=body.password,
        role=body.role,
        ssh_keys=body.ssh_keys,
        dotfiles_repo=body.dotfiles_repo,
        disabled=body.disabled,
        by=user,
        keep=token,
    )
    follow_account_change(context, target, changed, actor=user.name)
    return UserPublic.of(changed)


def follow_account_change(context: ServerContext, before: User, after: User, actor: str) -> None:
    """What a change of an account means for its workspaces, done as ``actor``."""
    if after.disabled and not before.disabled:
        _stop_all(context, after, actor)
    elif after.ssh_keys != before.ssh_keys and not after.disabled:
        _hand_keys(context, after, actor)


def _stop_all(context: ServerContext, user: User, actor: str) -> None:
    """A disabled user's running workspaces stop, as Coder's suspension does: nobody could
    reach them, yet their shared ports would stay open and their resources taken. Volumes
    are kept; enabling the user again starts nothing."""
    requests = WorkspaceRequests(context.service(user.name, actor))
    for workspace in context.store.list(owner=user.name, with_secrets=False):
        if workspace.desired_state is DesiredState.RUNNING:
            requests.action(workspace.name, Action.STOP)


def _hand_keys(context: ServerContext, user: User, actor: str) -> None:
    """Keys added or removed count at once in the running workspaces (the others get them
    at their next start)."""
    service = context.service(user.name, actor)
    for workspace in context.store.list(owner=user.name, with_secrets=True):
        if workspace.observed_state is ObservedState.RUNNING:
            service.hand_ssh_keys(workspace)


@router.delete("/users/{user_name}", status_code=204, responses=ERRORS)
def delete_user(target: VisibleUser, _admin: AdminUser, context: Context) -> Response:
    context.accounts.delete_user(target)
    return Response(status_code=204)


@router.get("/tokens", response_model=list[TokenPublic], responses=ERRORS)
def list_tokens(owner: TokenOwner, context: Context) -> list[TokenPublic]:
    """Your tokens (never the tokens themselves: they were shown once); an admin may name
    another user with ``?user=``."""
    return [TokenPublic.of(token) for token in context.store.users.tokens(owner.id)]


@router.post("/tokens", status_code=201, response_model=TokenCreated, responses=ERRORS)
def create_token(body: TokenCreate, user: CurrentUser, context: Context) -> TokenCreated:
    return _issue(context, user, body.name, body.expires_in_days)


@router.delete("/tokens/current", status_code=204, responses=ERRORS)
def revoke_current_token(token: CurrentToken, context: Context) -> Response:
    """Revoke the token this request carries (`dev8 logout`)."""
    context.accounts.revoke(token)
    return Response(status_code=204)


@router.delete("/tokens/{token_id}", status_code=204, responses=ERRORS)
def revoke_token(
    token_id: Annotated[str, Path(max_length=64)], user: CurrentUser, context: Context
) -> Response:
    context.accounts.revoke(context.accounts.token_of(user, token_id))
    return Response(status_code=204)
