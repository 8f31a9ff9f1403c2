"""The authorization matrix: for every endpoint of the API, what an anonymous caller, the
member who owns the resource, another member and an admin get. Another member is told the
resource does not exist (404), never that it is forbidden.

Every endpoint the application serves must be in the table: a new endpoint without a row
fails the test. Each case starts from fresh resources, so that one caller's change cannot
decide another's answer. Runs against the real app under uvicorn; the provider and agents
are the fakes of ``tests.fakes`` (no engine needed): a request let through to a workspace
is answered 502 by the relay, since no fake workspace has an agent that answers.

The browser's endpoints (``BROWSER``) get the caller's token as the ``dev8_session`` cookie
instead of a Bearer header; WebSocket routes have their own table (``WEBSOCKETS``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.routing import BaseRoute, Route, WebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from dev8.core.users import Role
from tests.archives import member, write_archive
from tests.integration.server.live import http_client, serving

ROLES = ("anonymous", "owner", "other", "admin")
OK, ACCEPTED, CREATED, GONE = 200, 202, 201, 204
SEE_OTHER, MOVED = 303, 307  # to the sign-in page (or where it leads), to the slash form
RELAYED = 502  # let through to the workspace, whose fake agent does not answer
APPS = "apps.test"
# (method, path): expected status for anonymous, owner, other member, admin.
WORKSPACE_READ = (401, OK, 404, OK)
WORKSPACE_CHANGE = (401, ACCEPTED, 404, ACCEPTED)
MATRIX: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("GET", "/healthz"): (OK, OK, OK, OK),
    ("GET", "/metrics"): (OK, OK, OK, OK),
    ("GET", "/api/v1/openapi.json"): (OK, OK, OK, OK),
    ("GET", "/api/v1/docs"): (OK, OK, OK, OK),
    ("GET", "/api/v1/docs/oauth2-redirect"): (OK, OK, OK, OK),
    ("POST", "/api/v1/auth/login"): (CREATED, CREATED, CREATED, CREATED),
    ("GET", "/api/v1/users/me"): (401, OK, OK, OK),
    ("GET", "/api/v1/users"): (401, 403, 403, OK),
    ("POST", "/api/v1/users"): (401, 403, 403, CREATED),
    ("GET", "/api/v1/users/{user_name}"): (401, OK, 404, OK),
    ("PATCH", "/api/v1/users/{user_name}"): (401, OK, 404, OK),
    ("DELETE", "/api/v1/users/{user_name}"): (401, 403, 404, 409),  # 409: owns a workspace
    ("GET", "/api/v1/tokens"): (401, OK, OK, OK),
    ("POST", "/api/v1/tokens"): (401, CREATED, CREATED, CREATED),
    ("DELETE", "/api/v1/tokens/current"): (401, GONE, GONE, GONE),
    ("DELETE", "/api/v1/tokens/{token_id}"): (401, GONE, 404, GONE),
    ("GET", "/api/v1/audit"): (401, 403, 403, OK),
    ("GET", "/api/v1/workspaces"): WORKSPACE_READ,
    ("POST", "/api/v1/workspaces"): WORKSPACE_CHANGE,
    ("GET", "/api/v1/workspaces/{name}"): WORKSPACE_READ,
    ("PATCH", "/api/v1/workspaces/{name}"): WORKSPACE_READ,  # idle timeout only: 200
    ("DELETE", "/api/v1/workspaces/{name}"): WORKSPACE_CHANGE,
    ("POST", "/api/v1/workspaces/{name}/start"): WORKSPACE_CHANGE,
    ("POST", "/api/v1/workspaces/{name}/stop"): WORKSPACE_CHANGE,
    ("POST", "/api/v1/workspaces/{name}/restart"): WORKSPACE_CHANGE,
    ("POST", "/api/v1/workspaces/{name}/rebuild"): WORKSPACE_CHANGE,
    ("GET", "/api/v1/workspaces/{name}/operations"): WORKSPACE_READ,
    ("GET", "/api/v1/workspaces/{name}/volumes"): WORKSPACE_READ,
    ("GET", "/api/v1/workspaces/{name}/status"): WORKSPACE_READ,
    ("GET", "/api/v1/workspaces/{name}/logs"): WORKSPACE_READ,
    ("GET", "/api/v1/workspaces/{name}/backups"): WORKSPACE_READ,
    ("POST", "/api/v1/workspaces/{name}/backups"): WORKSPACE_CHANGE,
    ("GET", "/api/v1/workspaces/{name}/backups/{backup_id}/{file}"): WORKSPACE_READ,
    ("DELETE", "/api/v1/workspaces/{name}/backups/{backup_id}"): (401, GONE, 404, GONE),
    ("POST", "/api/v1/workspaces/{name}/backups/{backup_id}/restore"): WORKSPACE_CHANGE,
    ("GET", "/api/v1/workspaces/{name}/snapshots"): WORKSPACE_READ,
    ("POST", "/api/v1/workspaces/{name}/snapshots"): WORKSPACE_CHANGE,
    ("POST", "/api/v1/workspaces/{name}/snapshots/{snapshot_id}/restore"): WORKSPACE_CHANGE,
    ("GET", "/api/v1/operations/{operation_id}"): WORKSPACE_READ,
    ("GET", "/api/v1/operations/{operation_id}/events"): WORKSPACE_READ,
    ("GET", "/api/v1/workspaces/{name}/ports"): WORKSPACE_READ,
    ("PUT", "/api/v1/workspaces/{name}/ports/{port}"): WORKSPACE_READ,
    ("DELETE", "/api/v1/workspaces/{name}/ports/{port}"): (401, GONE, 404, GONE),
    # The browser's door: the session cookie, never a Bearer header.
    ("GET", "/login"): (OK, OK, OK, OK),
    ("POST", "/login"): (SEE_OTHER,) * 4,  # the owner's user name and password, by anyone
    ("POST", "/logout"): (SEE_OTHER,) * 4,
    ("GET", "/api/v1/apps/ticket"): (SEE_OTHER,) * 4,  # the app host decides who enters
    # Single sign-on: off to the identity provider (GitHub, configured below) for anyone;
    # a callback this browser did not start is refused with the sign-in page.
    ("GET", "/login/{provider}"): (SEE_OTHER,) * 4,
    ("GET", "/login/{provider}/callback"): (401,) * 4,
    ("GET", "/@{owner}/{name}"): (MOVED,) * 4,
    **{
        (method, "/@{owner}/{name}/{path:path}"): (SEE_OTHER, RELAYED, 404, 404)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    },
}
# The dashboard (dev8.server.web.dashboard): the session cookie, an admin naming the owner
# (?owner=) as on the API; every change carries the session's CSRF token (DASHBOARD_FORMS).
PAGE_READ = (SEE_OTHER, OK, 404, OK)
PAGE_CHANGE = (401, SEE_OTHER, 404, SEE_OTHER)  # done: back to the list
DASHBOARD: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("GET", "/"): (SEE_OTHER,) * 4,  # to /workspaces
    ("GET", "/static/dashboard.css"): (OK,) * 4,
    ("GET", "/static/htmx-2.0.11.min.js"): (OK,) * 4,
    ("GET", "/static/favicon.svg"): (OK,) * 4,
    ("GET", "/favicon.ico"): (301,) * 4,  # to the static icon, for pages that name none
    ("GET", "/workspaces"): PAGE_READ,
    ("GET", "/workspaces/live"): PAGE_READ,
    ("GET", "/workspaces/new"): PAGE_READ,
    ("POST", "/workspaces/new"): PAGE_CHANGE,
    ("GET", "/workspaces/new/secret-row"): (SEE_OTHER, OK, OK, OK),  # a blank form row
    ("GET", "/workspaces/{name}/purge"): PAGE_READ,
    ("POST", "/workspaces/{name}/purge"): PAGE_CHANGE,
    **{
        ("POST", f"/workspaces/{{name}}/{action}"): PAGE_CHANGE
        for action in ("start", "stop", "restart", "rebuild", "delete")
    },
    # A workspace's detail page (dashboard.detail); its changes lead back to it.
    ("GET", "/workspaces/{name}/detail"): PAGE_READ,
    ("GET", "/workspaces/{name}/detail/history"): PAGE_READ,
    ("GET", "/workspaces/{name}/detail/backups/{backup_id}/{file}"): PAGE_READ,
    ("POST", "/workspaces/{name}/detail/backup"): PAGE_CHANGE,
    ("POST", "/workspaces/{name}/detail/snapshot"): PAGE_CHANGE,
    ("POST", "/workspaces/{name}/detail/backups/{backup_id}/restore"): PAGE_CHANGE,
    ("POST", "/workspaces/{name}/detail/snapshots/{snapshot_id}/restore"): PAGE_CHANGE,
    ("POST", "/workspaces/{name}/detail/ports"): PAGE_CHANGE,
    # (dashboard.detail's later routes: the progress stream, the restore confirmation pages)
    ("GET", "/static/progress-stream.js"): (OK,) * 4,
    ("GET", "/workspaces/{name}/detail/operations/{operation_id}/events"): PAGE_READ,
    ("GET", "/workspaces/{name}/detail/backups/{backup_id}/restore"): PAGE_READ,
    ("GET", "/workspaces/{name}/detail/snapshots/{snapshot_id}/restore"): PAGE_READ,
    # The account page: one's own account; a change answers with the page (200).
    ("GET", "/account"): (SEE_OTHER, OK, OK, OK),
    ("POST", "/account/ssh-keys"): (401, OK, OK, OK),
    ("POST", "/account/dotfiles"): (401, OK, OK, OK),
    ("POST", "/account/password"): (401, OK, 403, OK),  # another's current password: 403
    ("POST", "/account/tokens"): (401, OK, OK, OK),
    ("POST", "/account/tokens/{token_id}/revoke"): (401, OK, 404, OK),  # as the API's
    # The admin page: 403 for a member, as the API's admin endpoints.
    ("GET", "/admin"): (SEE_OTHER, 403, 403, OK),
    ("POST", "/admin/users"): (401, 403, 403, OK),
    ("POST", "/admin/users/{user_name}/role"): (401, 403, 403, OK),
    ("POST", "/admin/users/{user_name}/disable"): (401, 403, 403, OK),
    ("POST", "/admin/users/{user_name}/enable"): (401, 403, 403, OK),
}
DASHBOARD_FORMS = {
    ("POST", "/workspaces/new"): lambda case: {"name": f"new-{case.n}"},
    ("POST", "/workspaces/{name}/purge"): lambda case: {"confirm": case.workspace},
    ("POST", "/workspaces/{name}/detail/ports"): lambda case: {"port": "3000", "sharing": "public"},
    ("POST", "/account/ssh-keys"): lambda case: {"ssh_keys": ""},
    ("POST", "/account/dotfiles"): lambda case: {"dotfiles_repo": ""},
    ("POST", "/account/password"): lambda case: {  # the owner's password, set again
        "current_password": f"{case.owner}-password",
        "password": f"{case.owner}-password",
        "password_again": f"{case.owner}-password",
    },
    ("POST", "/account/tokens"): lambda case: {"name": "matrix"},
    ("POST", "/admin/users"): lambda case: {"name": f"added-{case.n}", "password": "x" * 12},
    ("POST", "/admin/users/{user_name}/role"): lambda case: {"role": "member"},
}
MATRIX |= DASHBOARD
BROWSER = {
    endpoint
    for endpoint in MATRIX
    if endpoint[1].startswith(("/login", "/logout", "/api/v1/apps/ticket", "/@"))
} | set(DASHBOARD)
PAGES = {("GET", "/login/{provider}/callback")}  # refusals are the sign-in page, not JSON
BODIES = {
    ("POST", "/api/v1/users"): lambda case: {"name": f"new-{case.n}", "password": "x" * 12},
    ("PATCH", "/api/v1/users/{user_name}"): lambda case: {"ssh_keys": ""},
    ("POST", "/api/v1/tokens"): lambda case: {"name": "matrix"},
    ("POST", "/api/v1/workspaces"): lambda case: {"name": f"new-{case.n}", "image": IMAGE},
    ("PATCH", "/api/v1/workspaces/{name}"): lambda case: {"idle_timeout_s": 60},
    ("PUT", "/api/v1/workspaces/{name}/ports/{port}"): lambda case: {"sharing": "authenticated"},
}
IMAGE = "dev8/workspace:test"
counter = itertools.count()


def all_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, those of included routers too (FastAPI keeps those behind a wrapper)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from all_routes(included.routes) if included is not None else (route,)


def served_endpoints(app) -> set[tuple[str, str]]:
    """Every (method, path) served: the API's from its OpenAPI schema, plus every other
    route (the schema and its docs page, the browser's pages and the IDE's proxy)."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    for route in all_routes(app.routes):
        if isinstance(route, Route):
            found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return found


@dataclass
class Case:
    """Fresh resources for one request: a member who owns a running workspace (with an
    operation in its history and a backup the server keeps) and a token, plus another
    member and an admin."""

    n: int
    owner: str
    workspace: str
    operation_id: str
    token_id: str
    tokens: dict[str, str | None]
    backup_id: str
    archive: str

    def login_body(self) -> dict:
        return {"username": self.owner, "password": f"{self.owner}-password"}

    def credentials(self, role: str, cookie: bool) -> dict[str, str]:
        """The headers that carry ``role``'s token: the session cookie or a Bearer header."""
        token = self.tokens[role]
        if token is None:
            return {}
        if cookie:
            return {"Cookie": f"dev8_session={token}"}
        return {"Authorization": f"Bearer {token}"}


def make_cases(api, bob, admin_user, count: int) -> list[Case]:
    """``count`` cases, their workspaces created through the API side by side (the
    reconciler runs them in parallel, as it would for as many users)."""
    accounts = api.context.accounts
    pending = []
    for _ in range(count):
        n = next(counter)
        owner = accounts.create_user(f"owner-{n}", f"owner-{n}-password", Role.MEMBER)
        owner_token = accounts.issue_token(owner, "matrix", 1)
        tokens = {
            "anonymous": None,
            "owner": owner_token[1],
            "other": accounts.issue_token(bob, "matrix", 1)[1],
            "admin": accounts.issue_token(admin_user, "matrix", 1)[1],
        }
        client = http_client(api.url, tokens["owner"])
        accepted = client.post("/api/v1/workspaces", json={"name": "w", "image": IMAGE}).json()
        pending.append((n, owner, owner_token[0].id, tokens, client, accepted))
    cases = []
    for n, owner, token_id, tokens, client, accepted in pending:
        try:
            api.settle(client, accepted)
        finally:
            client.close()
        backup_id, archive = kept_backup(api, accepted["workspace"])
        operation_id = accepted["operations"][0]["id"]
        cases.append(Case(n, owner.name, "w", operation_id, token_id, tokens, backup_id, archive))
    return cases


def kept_backup(api, workspace: dict) -> tuple[str, str]:
    """A backup as the server keeps it, written here: the fake provider cannot make one."""
    backup_id = "20261126T120000Z-abc123"
    folder = api.context.kept_backups.root / workspace["id"] / backup_id
    folder.mkdir(parents=True)
    archive = write_archive(
        folder / "w-home-20261126T120000Z.tar.zst",
        [member("notes.txt", data=b"kept")],
        workspace_id=workspace["id"],
        workspace_name=workspace["name"],
    )
    return backup_id, archive.name


def request_for(case: Case, method: str, path: str) -> tuple[str, dict, dict[str, Any]]:
    """The concrete path, query parameters and body (``json=`` or ``data=``) of a request."""
    concrete = path.replace("{path:path}", "x").format(
        owner=case.owner,
        port=3000,
        name=case.workspace,
        user_name=case.owner,
        token_id=case.token_id,
        operation_id=case.operation_id,
        backup_id=case.backup_id,
        file=case.archive,
        snapshot_id="latest",
        provider="github",
    )
    params = {"owner": case.owner} if path.startswith(("/api/v1/workspaces", "/workspaces")) else {}
    if path == "/api/v1/apps/ticket":
        params = {"host": f"{case.workspace}--{case.owner}.{APPS}", "next": "/"}
    body = {"json": BODIES.get((method, path), lambda _case: None)(case)}
    if path == "/api/v1/auth/login":
        body = {"json": case.login_body()}
    if (method, path) == ("POST", "/login"):
        body = {"data": {**case.login_body(), "next": "/"}}
    if (method, path) in DASHBOARD_FORMS:
        body = {"data": DASHBOARD_FORMS[method, path](case)}
    return concrete, params, body


def dashboard_csrf(api, case: Case, role: str, endpoint: tuple[str, str]) -> dict[str, str]:
    """The CSRF header a dashboard page would send with a change: the token of ``role``'s
    session."""
    secret = case.tokens[role]
    if endpoint not in DASHBOARD or endpoint[0] != "POST" or secret is None:
        return {}
    token_id = api.context.accounts.verify_token(secret)[1].id
    return {"X-CSRF-Token": api.live.app.state.dashboard_csrf.token(token_id)}


@pytest.fixture(scope="module")
def api(tmp_path_factory, module_database_url):
    """A server in subdomain mode (so that the ticket endpoint has tickets to give); its
    observation every 60 s: the hundreds of running workspaces made here are observed one by
    one at every pass, which at 2 s took more than half of the module's CPU; the matrix's
    answers come from the requests, never from an observation."""
    directory = tmp_path_factory.mktemp("server")
    with serving(
        directory,
        module_database_url,
        observe_interval_s=60.0,
        apps_domain=APPS,
        public_url="http://dev8.test",
        # GitHub needs no discovery: its button leads there without asking it anything.
        github_client_id="matrix",
        github_client_secret="matrix-secret",
        github_url="http://127.0.0.1:9",
    ) as api:
        api.context.accounts.create_user("bob", "bob-password-1", Role.MEMBER)
        yield api


def test_every_endpoint_is_in_the_matrix(api):
    assert served_endpoints(api.live.app) == set(MATRIX)


@pytest.mark.parametrize("endpoint", sorted(MATRIX), ids=lambda e: f"{e[0]} {e[1]}")
def test_authorization(api, endpoint):
    method, path = endpoint
    bob = api.context.accounts.user("bob")
    admin_user = api.context.accounts.user("admin")
    answers = []
    for role, case in zip(ROLES, make_cases(api, bob, admin_user, len(ROLES)), strict=True):
        concrete, params, body = request_for(case, method, path)
        with http_client(api.url) as client:
            headers = case.credentials(role, endpoint in BROWSER)
            headers |= dashboard_csrf(api, case, role, endpoint)
            answer = client.request(method, concrete, params=params, headers=headers, **body)
        answers.append(answer.status_code)
        if answer.status_code >= 400 and endpoint in PAGES:
            assert "<h1>Sign in to dev8</h1>" in answer.text
        elif answer.status_code >= 400:
            error = answer.json()
            assert set(error) == {"error", "message"}, answer.text
    assert tuple(answers) == MATRIX[endpoint], dict(zip(ROLES, answers, strict=True))


# Changes to a user that the matrix's one body per endpoint cannot tell apart:
# PATCH /api/v1/users/{owner} with each body -> anonymous, the owner themselves, another
# member, an admin. Only an admin changes roles or disables and enables users.
USER_CHANGES: dict[str, tuple[dict[str, Any], tuple[int, int, int, int]]] = {
    "disable": ({"disabled": True}, (401, 403, 404, OK)),
    "enable": ({"disabled": False}, (401, 403, 404, OK)),
    "role": ({"role": "admin"}, (401, 403, 404, OK)),
}


@pytest.mark.parametrize("change", sorted(USER_CHANGES))
def test_user_change_authorization(api, change):
    body, expected = USER_CHANGES[change]
    bob = api.context.accounts.user("bob")
    admin_user = api.context.accounts.user("admin")
    answers = []
    for role, case in zip(ROLES, make_cases(api, bob, admin_user, len(ROLES)), strict=True):
        with http_client(api.url) as client:
            headers = case.credentials(role, cookie=False)
            answer = client.patch(f"/api/v1/users/{case.owner}", json=body, headers=headers)
        answers.append(answer.status_code)
        if answer.status_code >= 400:
            assert set(answer.json()) == {"error", "message"}, answer.text
    assert tuple(answers) == expected, dict(zip(ROLES, answers, strict=True))


# WebSocket routes: (path, credential) -> anonymous, owner, other member, admin.
WEBSOCKETS: dict[str, tuple[int, int, int, int]] = {
    # An admin names the owner (?owner=), as on every workspace route.
    "/api/v1/workspaces/{name}/tunnel/{port}": (401, RELAYED, 404, RELAYED),
    "/@{owner}/{name}/{path:path}": (401, RELAYED, 404, 404),  # the owner's only
}


def websocket_status(url: str, path: str, headers: dict[str, str]) -> int:
    """The HTTP status an upgrade is refused with (101 if it is accepted)."""
    try:
        with connect(url.replace("http://", "ws://") + path, additional_headers=headers):
            return 101
    except InvalidStatus as refused:
        body = refused.response.body or b""
        assert body.startswith(b'{"error":'), body
        return refused.response.status_code


def test_every_websocket_route_is_in_its_table(api):
    served = {r.path for r in all_routes(api.live.app.routes) if isinstance(r, WebSocketRoute)}
    assert served == set(WEBSOCKETS)


@pytest.mark.parametrize("path", sorted(WEBSOCKETS))
def test_websocket_authorization(api, path):
    """Upgrades are let in exactly as requests are: no or a wrong credential is refused
    before the upgrade, another member's workspace does not exist."""
    bob = api.context.accounts.user("bob")
    admin_user = api.context.accounts.user("admin")
    cookie = path.startswith("/@")
    answers = []
    for role, case in zip(ROLES, make_cases(api, bob, admin_user, len(ROLES)), strict=True):
        concrete = path.replace("{path:path}", "x").format(
            owner=case.owner, name=case.workspace, port=8080
        )
        if not cookie:
            concrete += f"?owner={case.owner}"
        credential = case.credentials(role, cookie)
        answers.append(websocket_status(api.url, concrete, credential))
    assert tuple(answers) == WEBSOCKETS[path], dict(zip(ROLES, answers, strict=True))
    wrong = {"Cookie": "dev8_session=dev8_wrong"} if cookie else {"Authorization": "Bearer x"}
    assert websocket_status(api.url, concrete, wrong) == 401
