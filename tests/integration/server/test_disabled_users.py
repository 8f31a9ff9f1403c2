"""Disabling a user, against the real app under uvicorn: every credential they hold is
refused (API token, the browser session on the dashboard and the IDE, its WebSocket, the
app-host cookie, password sign-in on the form and the API) and works again once they are
enabled; disabling stops their running workspaces and enabling starts nothing; only an admin
disables, never themselves nor the last enabled admin; the admin page does it too.

Stand-ins (no engine): the provider and agent client are the fakes of ``tests.fakes``, and
the IDE and apps answer through ``tests.standins``' agent (the fixtures of
``test_browser``). Single sign-on's refusal is in ``test_sso``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from dev8.core.users import ACCOUNT_DISABLED
from dev8.service.accounts import BAD_LOGIN, TOKEN_CACHE_SECONDS
from tests.integration.helpers import one_line_error
from tests.integration.server import test_browser
from tests.integration.server.live import ADMIN_PASSWORD, wait_for
from tests.integration.server.test_browser import (
    IDE,
    call,
    follow_ticket,
    redeem,
    session,
    sign_in,
    ws_status,
)
from tests.integration.server.test_dashboard import HTML, Browser
from tests.integration.server.test_dashboard import sign_in as dashboard_sign_in

ALICE_PASSWORD = "alice-password-1234"
# test_browser's fixtures: alice owns the running workspaces w and v, bob is a member; the
# IDE and apps answer through the stand-in agent.
api, standins = test_browser.api, test_browser.standins


def set_disabled(admin: httpx.Client, name: str, disabled: bool) -> httpx.Response:
    return admin.patch(f"/api/v1/users/{name}", json={"disabled": disabled})


def api_login(api, name: str, password: str) -> httpx.Response:
    return api.anonymous().post("/api/v1/auth/login", json={"username": name, "password": password})


def test_a_disabled_user_is_refused_everywhere_and_let_in_again(api):
    token = api.login("alice", ALICE_PASSWORD)
    cookies = session(api, "alice")
    app = {"dev8_app": redeem(api, follow_ticket(api, IDE, cookies)).cookies["dev8_app"]}
    assert call(api, "GET", "/", host=IDE, cookies=app).status_code == 200  # now cached
    admin = api.admin()
    alice_id = api.context.accounts.user("alice").id
    tokens_before = len(api.context.store.users.tokens(alice_id))

    answer = set_disabled(admin, "alice", True)
    assert answer.status_code == 200, answer.text
    assert answer.json()["disabled"] is True and answer.json()["disabled_at"]

    refused = token.get("/api/v1/users/me")
    assert refused.status_code == 401
    assert refused.json() == {"error": "unauthorized", "message": ACCOUNT_DISABLED}
    assert (
        call(api, "GET", "/workspaces", cookies=cookies)
        .headers["location"]
        .startswith("/login?next=")
    )
    assert call(api, "GET", "/@alice/w/", cookies=cookies).status_code == 303
    assert ws_status(api, "/@alice/w/socket", cookies=cookies) == 401
    # An app host asks again after at most TOKEN_CACHE_SECONDS, as for a revoked token.
    wait_for(
        lambda: call(api, "GET", "/", host=IDE, cookies=app).status_code == 303,
        timeout=TOKEN_CACHE_SECONDS * 3,
        message="the app cookie refused",
    )
    form = sign_in(api, "alice")
    assert form.status_code == 401 and ACCOUNT_DISABLED in form.text
    assert "dev8_session" not in form.cookies
    wrong = sign_in(api, "alice", "not-the-password")  # a stranger learns nothing
    assert wrong.status_code == 401 and BAD_LOGIN in wrong.text
    answer = api_login(api, "alice", ALICE_PASSWORD)
    assert answer.status_code == 401 and answer.json()["message"] == ACCOUNT_DISABLED
    assert len(api.context.store.users.tokens(alice_id)) == tokens_before  # nothing issued

    answer = set_disabled(admin, "alice", False)
    assert answer.status_code == 200 and answer.json()["disabled"] is False
    assert answer.json()["disabled_at"] is None
    assert token.get("/api/v1/users/me").status_code == 200
    assert call(api, "GET", "/workspaces", cookies=cookies).status_code == 200
    assert call(api, "GET", "/@alice/w/", cookies=cookies).status_code == 409  # stopped
    api.settle(token, token.post("/api/v1/workspaces/w/start").json())
    assert call(api, "GET", "/@alice/w/", cookies=cookies).status_code == 200
    wait_for(
        lambda: call(api, "GET", "/", host=IDE, cookies=app).status_code == 200,
        timeout=TOKEN_CACHE_SECONDS * 3,
        message="the app cookie let in again",
    )
    assert sign_in(api, "alice").status_code == 303
    assert api_login(api, "alice", ALICE_PASSWORD).status_code == 201


def workspace_states(admin: httpx.Client) -> dict[str, tuple[str, str]]:
    listed = admin.get("/api/v1/workspaces", params={"owner": "alice"}).json()["items"]
    return {w["name"]: (w["desired_state"], w["state"]) for w in listed}


def test_disabling_stops_the_running_workspaces_and_enabling_starts_nothing(api):
    admin = api.admin()
    assert workspace_states(admin) == {"v": ("running", "running"), "w": ("running", "running")}
    assert set_disabled(admin, "alice", True).status_code == 200
    stopped = {"v": ("stopped", "stopped"), "w": ("stopped", "stopped")}
    wait_for(lambda: workspace_states(admin) == stopped, message="alice's workspaces stopped")
    history = admin.get("/api/v1/workspaces/w/operations", params={"owner": "alice"}).json()
    assert (history[0]["action"], history[0]["actor"]) == ("stop", "admin")
    volumes = admin.get("/api/v1/workspaces/w/volumes", params={"owner": "alice"})
    assert volumes.status_code == 200 and volumes.json()  # kept

    assert set_disabled(admin, "alice", False).status_code == 200
    api.watch.observed()
    assert workspace_states(admin) == stopped
    audit = admin.get("/api/v1/audit", params={"actor": "admin"}).json()["items"]
    changes = [(e["method"], e["path"], e["status"]) for e in audit]
    assert changes.count(("PATCH", "/api/v1/users/alice", 200)) == 2


def test_only_an_admin_disables_and_never_themselves_nor_the_last_admin(api):
    bob = api.login("bob", "bob-password-1234")
    assert set_disabled(bob, "alice", True).status_code == 404  # another user: not there
    refused = set_disabled(bob, "bob", True)
    assert refused.status_code == 403 and "only an admin" in refused.json()["message"]
    admin = api.admin()
    refused = set_disabled(admin, "admin", True)
    assert refused.status_code == 409
    assert refused.json()["message"] == "you cannot disable your own account; ask another admin"

    boss = api.member("boss", role="admin")
    assert set_disabled(boss, "admin", True).status_code == 200
    assert admin.get("/api/v1/users/me").status_code == 401
    refused = boss.patch("/api/v1/users/boss", json={"role": "member"})
    assert refused.status_code == 409
    assert refused.json()["message"] == (
        "boss is the last enabled admin; make another user admin first"
    )
    assert set_disabled(boss, "admin", False).status_code == 200
    assert admin.get("/api/v1/users/me").status_code == 200
    assert [u["disabled"] for u in admin.get("/api/v1/users").json()] == [False] * 4


def test_the_admin_page_disables_and_enables(api):
    page_admin: Browser = dashboard_sign_in(api, "admin", ADMIN_PASSWORD)
    page = page_admin.get("/admin").text
    assert '<th scope="col">State</th>' in page
    assert 'id="disable-alice"' in page and 'id="disable-admin"' not in page  # not oneself
    assert 'hx-confirm="Disable alice?' in page
    alice = dashboard_sign_in(api, "alice", ALICE_PASSWORD)

    answer = page_admin.post("/admin/users/alice/disable", headers=HTML)
    assert answer.status_code == 200, answer.text
    assert "alice is disabled" in answer.text and 'id="enable-alice"' in answer.text
    assert alice.get("/workspaces").status_code == 303  # the session ends
    assert api.context.accounts.user("alice").disabled

    refused = page_admin.post("/admin/users/admin/disable", headers=HTML)
    assert refused.status_code == 409 and "your own account" in refused.text
    refused = page_admin.post("/admin/users/alice/disable", token="", headers=HTML)
    assert refused.status_code == 403  # no CSRF token

    answer = page_admin.post("/admin/users/alice/enable", headers=HTML)
    assert answer.status_code == 200 and 'id="disable-alice"' in answer.text
    assert alice.get("/workspaces").status_code == 200


def test_the_cli_disables_and_enables(api, tmp_path):
    """`dev8 user disable|enable` as an admin runs them: a subprocess with its own HOME,
    logged in through DEV8_SERVER_URL and DEV8_TOKEN."""
    admin = api.context.accounts.user("admin")
    token = api.context.accounts.issue_token(admin, "cli", 1)[1]
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "DEV8_HOME": str(tmp_path / "data"),
        "DEV8_SERVER_URL": api.url,
        "DEV8_TOKEN": token,
    }

    def dev8(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "dev8", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)

    done = dev8("user", "disable", "alice")
    assert done.returncode == 0 and "Disabled alice" in done.stdout, done.stderr
    assert api.context.accounts.user("alice").disabled
    refused = dev8("user", "disable", "admin")
    assert "you cannot disable your own account" in one_line_error(refused)
    done = dev8("user", "enable", "alice")
    assert done.returncode == 0 and "Enabled alice" in done.stdout, done.stderr
    assert not api.context.accounts.user("alice").disabled
