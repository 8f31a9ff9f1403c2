"""The admin page: users (add one, change a role, disable or enable one), every workspace
with its owner, state and resources, the audit log (filtered, paged) and the server's
health at a glance. As on the API, a member is refused with 403.

The audit store filters by user only; the path-or-action and status filters are applied
here to the newest entries, scanning back at most ``AUDIT_SCAN`` entries per page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dev8.core.audit import AuditEntry
from dev8.core.errors import Dev8Error, InvalidInput
from dev8.core.users import Role
from dev8.server.context import ServerContext
from dev8.server.deps import Context
from dev8.server.routes.accounts import follow_account_change
from dev8.server.web.dashboard.render import failure, html, is_htmx, wants_html
from dev8.server.web.dashboard.scope import PageError, SignedIn
from dev8.server.web.dashboard.security import Viewer
from dev8.service.accounts import new_password, require_admin

router = APIRouter(include_in_schema=False)
MAX_WORKSPACES = 500
AUDIT_PAGE = 50
AUDIT_SCAN = 5000  # entries read back per page at most when filtering by path or status
_BATCH = 500
STATUS_PATTERN = re.compile(r"[1-5](xx|[0-9]{2})")


async def _admin(signed_in: SignedIn) -> Viewer:
    try:
        require_admin(signed_in.user)
    except Dev8Error as error:
        raise PageError(error) from error
    return signed_in


Admin = Annotated[Viewer, Depends(_admin)]


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log shows: a user's requests, a path prefix or method, a status
    ("404" exactly or "4xx" a class); blank shows everything."""

    user: str = ""
    action: str = ""
    status: str = ""

    def __post_init__(self) -> None:
        if self.status and STATUS_PATTERN.fullmatch(self.status) is None:
            raise InvalidInput(f"status {self.status[:10]!r}: give a code (404) or a class (4xx)")

    def matches(self, entry: AuditEntry) -> bool:
        action = self.action
        if action and not (entry.path.startswith(action) or entry.method.upper() == action.upper()):
            return False
        status = self.status
        if status.endswith("xx"):
            return str(entry.status).startswith(status[0])
        return not status or str(entry.status) == status

    def query(self, before: int | None = None) -> str:
        values = {"user": self.user, "action": self.action, "status": self.status}
        if before is not None:
            values["before"] = str(before)
        return urlencode({key: value for key, value in values.items() if value})


def audit_page(
    context: ServerContext, wanted: AuditFilter, before: int | None
) -> tuple[list[AuditEntry], int | None]:
    """Up to ``AUDIT_PAGE`` entries older than ``before`` that match, newest first, and
    where the next page starts (None: no older entries)."""
    found: list[AuditEntry] = []
    scanned = 0
    while len(found) < AUDIT_PAGE and scanned < AUDIT_SCAN:
        batch = context.store.audit.list(limit=_BATCH, before=before, actor=wanted.user or None)
        for entry in batch:
            before = entry.seq
            if wanted.matches(entry):
                found.append(entry)
                if len(found) == AUDIT_PAGE:
                    break
        scanned += len(batch)
        if len(batch) < _BATCH and len(found) < AUDIT_PAGE:
            return found, None
    return found, before


def page_values(context: ServerContext, wanted: AuditFilter, before: int | None) -> dict[str, Any]:
    workspaces = context.store.page(limit=MAX_WORKSPACES)
    entries, older = audit_page(context, wanted, before)
    return {
        "users": context.store.users.list(),
        "roles": [role.value for role in Role],
        "workspaces": workspaces,
        "workspaces_truncated": len(workspaces) == MAX_WORKSPACES,
        "by_state": sorted(context.store.count_by_state().items()),
        "unfinished": context.store.count_unfinished(),
        "audit": entries,
        "filter": wanted,
        "older": wanted.query(older) if older is not None else "",
        "paged": before is not None,
    }


def _page(
    context: ServerContext,
    signed_in: Viewer,
    wanted: AuditFilter | None = None,
    before: int | None = None,
    *,
    message: str = "",
    error: str = "",
    status: int = 200,
    created: tuple[str, str] | None = None,
) -> Response:
    return html(
        "admin.html",
        status,
        title="Admin",
        current="admin",
        viewer=signed_in,
        message=message,
        error=error,
        created=created,
        **page_values(context, wanted or AuditFilter(), before),
    )


def refused(
    request: Request, context: ServerContext, signed_in: Viewer, error: Dev8Error
) -> Response:
    if is_htmx(request) or wants_html(request):
        request.state.error = error
        return _page(context, signed_in, error=error.message, status=error.http_status)
    return failure(request, error)


@router.get("/admin")
def admin_page(
    context: Context,
    signed_in: Admin,
    user: Annotated[str, Query(max_length=255)] = "",
    action: Annotated[str, Query(max_length=2048)] = "",
    status: Annotated[str, Query(max_length=10)] = "",
    before: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    try:
        wanted = AuditFilter(user.strip(), action.strip(), status.strip())
    except Dev8Error as error:
        raise PageError(error) from error
    return _page(context, signed_in, wanted, before)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_fields=20)
    return {key: value for key, value in form.items() if isinstance(value, str)}


def role_of(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        roles = ", ".join(role.value for role in Role)
        raise InvalidInput(f"unknown role {text[:20]!r}; choose one of {roles}") from None


@router.post("/admin/users")
async def add_user(request: Request, context: Context, signed_in: Admin) -> Response:
    """A new user with the password given, or a generated one; either is shown once."""
    form = await _form(request)
    name = form.get("name", "").strip()
    password = form.get("password", "") or new_password()
    try:
        role = role_of(form.get("role", Role.MEMBER.value))
        await run_in_threadpool(context.accounts.create_user, name, password, role)
    except Dev8Error as error:
        return refused(request, context, signed_in, error)
    message = f"User {name} added. Give them their password now: it is not shown again."
    return _page(context, signed_in, message=message, created=(name, password))


@router.post("/admin/users/{user_name}/role")
async def change_role(
    request: Request, context: Context, signed_in: Admin, user_name: str
) -> Response:
    form = await _form(request)
    try:
        role = role_of(form.get("role", ""))
        target = await run_in_threadpool(context.accounts.user, user_name[:255])
        await run_in_threadpool(context.accounts.change, target, role=role)
    except Dev8Error as error:
        return refused(request, context, signed_in, error)
    return _page(context, signed_in, message=f"{target.name} is now {role.value}.")


@router.post("/admin/users/{user_name}/disable")
async def disable_user(
    request: Request, context: Context, signed_in: Admin, user_name: str
) -> Response:
    """As ``PATCH /api/v1/users/{name}`` with ``disabled: true``: the user's tokens, sessions
    and sign-ins are refused and their running workspaces stopped."""
    return await _set_disabled(request, context, signed_in, user_name, disabled=True)


@router.post("/admin/users/{user_name}/enable")
async def enable_user(
    request: Request, context: Context, signed_in: Admin, user_name: str
) -> Response:
    return await _set_disabled(request, context, signed_in, user_name, disabled=False)


async def _set_disabled(
    request: Request, context: Context, signed_in: Viewer, user_name: str, *, disabled: bool
) -> Response:
    try:
        target = await run_in_threadpool(context.accounts.user, user_name[:255])
        changed = await run_in_threadpool(
            context.accounts.change, target, disabled=disabled, by=signed_in.user
        )
        await run_in_threadpool(
            follow_account_change, context, target, changed, signed_in.user.name
        )
    except Dev8Error as error:
        return refused(request, context, signed_in, error)
    if disabled:
        message = f"{target.name} is disabled; their running workspaces are being stopped."
    else:
        message = f"{target.name} is enabled again; their workspaces stay as they are."
    return _page(context, signed_in, message=message)
