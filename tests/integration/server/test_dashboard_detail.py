"""A workspace's detail page (``/workspaces/{name}/detail``) against the real app under
uvicorn: its sections, who may see it, CSRF on its actions, a backup queued through it and
its history.

Stand-ins (no engine): the provider is ``tests.fakes``'s; the agent is ``FakeAgent`` that
also reports services, activity, disk use and dotfiles as a real agent's status does. The
fake provider cannot make a backup, so a kept one is written as the server keeps it.
"""

from __future__ import annotations

import httpx
import pytest

from tests.archives import member, write_archive
from tests.fakes import FakeAgent
from tests.integration.server.live import IMAGE, Api, wait_for
from tests.integration.server.test_dashboard import (
    HTMX_REQUEST,
    Browser,
    assert_safe_page,
    parse,
    sign_in,
)

GIB = 1024**3
BACKUP_ID = "20261126T120000Z-abc123"
ARCHIVE = "w-home-20261126T120000Z.tar.zst"


class ReportingAgent(FakeAgent):
    """``FakeAgent`` with the rest of a real agent's status: services, activity, disk."""

    def status(self, agent_url: str | None, token: str) -> dict:
        status = super().status(agent_url, token)
        status["services"] = {
            "code-server": {"state": "running", "restarts": 2},
            "sshd": {"state": "running", "restarts": 0},
        }
        status["activity"] |= {"ssh_sessions": 1, "ide_connections": 3}
        status["disk"] = {"home": {"used_bytes": 5 * GIB, "fs_total_bytes": 50 * GIB}}
        status["dotfiles"] = {"repo": "https://git.example/dots", "result": "installed"}
        return status


@pytest.fixture
def api(make_api) -> Api:
    """alice owns the running workspace ``w`` with a kept backup; bob is another member."""
    api = make_api(agent=ReportingAgent())
    alice = api.member("alice")
    accepted = alice.post("/api/v1/workspaces", json={"name": "w", "image": IMAGE}).json()
    api.settle(alice, accepted)
    keep_backup(api, accepted["workspace"])
    api.member("bob")
    return api


def keep_backup(api: Api, workspace: dict) -> None:
    folder = api.context.kept_backups.root / workspace["id"] / BACKUP_ID
    folder.mkdir(parents=True)
    write_archive(
        folder / ARCHIVE,
        [member("notes.txt", data=b"kept")],
        workspace_id=workspace["id"],
        workspace_name=workspace["name"],
    )


@pytest.fixture
def alice(api) -> Browser:
    return sign_in(api, "alice", "alice-password-1234")


@pytest.fixture
def bob(api) -> Browser:
    return sign_in(api, "bob", "bob-password-1234")


def operations(api: Api) -> list[dict]:
    answer = api.admin().get("/api/v1/workspaces/w/operations", params={"owner": "alice"})
    return answer.json()


# The page ---------------------------------------------------------------------------------
def test_the_list_links_each_card_to_its_detail_page(api, alice):
    links = [a.get("href") for a in parse(alice.get("/workspaces").text).all("a")]
    assert "/workspaces/w/detail" in links


def test_the_owner_sees_every_section(api, alice):
    page = alice.get("/workspaces/w/detail")
    assert page.status_code == 200, page.text
    parsed = assert_safe_page(page)
    text = page.text
    # Status: services with restarts, activity, dotfiles.
    assert "<td>code-server</td><td>running</td><td>2</td>" in text
    assert "SSH sessions: 1" in text and "IDE connections: 3" in text
    assert "Dotfiles (https://git.example/dots): installed" in text
    # Disk: a meter against the home quota (20 GiB), with its text label.
    meter = next(m for m in parsed.all("meter") if m["id"] == "disk-home")
    assert (meter["value"], meter["max"]) == (str(5 * GIB), str(20 * GIB))
    assert "5.0 GiB of 20.0 GiB (25%)" in text
    assert any(label.get("for") == "disk-home" for label in parsed.all("label"))
    # Ports: path mode, so the page says sharing needs subdomain mode.
    assert 'id="ports-note"' in text and "subdomain mode" in text
    # History: the create operation, with its result.
    assert "<td>create</td>" in text and "badge-succeeded" in text
    # Backups: download link, restore confirming what it replaces, the two buttons.
    hrefs = [a.get("href") for a in parsed.all("a")]
    assert f"/workspaces/w/detail/backups/{BACKUP_ID}/{ARCHIVE}" in hrefs
    restore = next(f for f in parsed.all("form") if f["action"].endswith("/restore"))
    assert (
        BACKUP_ID in restore["hx-confirm"] and "home, workspace and system" in restore["hx-confirm"]
    )
    assert {"backup-now", "snapshot-now"} <= {b.get("id") for b in parsed.all("button")}
    assert "No snapshots." in text


def test_a_stopped_workspace_says_its_agent_reports_nothing(api, alice):
    assert alice.post("/workspaces/w/stop", headers=HTMX_REQUEST).status_code == 200
    wait_for(lambda: "is stopped" in alice.get("/workspaces/w/detail").text, message="stopped")
    page = alice.get("/workspaces/w/detail").text
    assert "its agent reports nothing" in page and "not measured" in page


def test_the_backup_archive_downloads(api, alice):
    answer = alice.get(f"/workspaces/w/detail/backups/{BACKUP_ID}/{ARCHIVE}")
    assert answer.status_code == 200 and answer.content[:4] == b"\x28\xb5\x2f\xfd"  # zstd


def test_subdomain_mode_offers_the_share_form_and_it_shares(make_api):
    api = make_api(apps_domain="apps.test", public_url="http://dev8.test")
    carol = api.member("carol")
    api.settle(carol, carol.post("/api/v1/workspaces", json={"name": "w", "image": IMAGE}).json())
    browser = sign_in(api, "carol", "carol-password-1234")
    page = browser.get("/workspaces/w/detail")
    assert 'id="ports-note"' not in page.text and 'id="share-port"' in page.text
    form = {"port": "3000", "sharing": "authenticated", "csrf_token": browser.csrf}
    answer = browser.request("POST", "/workspaces/w/detail/ports", data=form)
    assert (answer.status_code, answer.headers["location"]) == (303, "/workspaces/w/detail")
    shared = carol.get("/api/v1/workspaces/w/ports").json()
    assert [(p["port"], p["sharing"]) for p in shared] == [(3000, "authenticated")]
    assert "Port 3000: <strong>authenticated</strong>" in browser.get("/workspaces/w/detail").text


# Who may see it ---------------------------------------------------------------------------
def test_another_member_gets_404_and_an_admin_names_the_owner(api, bob):
    assert bob.get("/workspaces/w/detail").status_code == 404
    assert bob.get("/workspaces/w/detail", params={"owner": "alice"}).status_code == 404
    assert bob.post("/workspaces/w/detail/backup", params={"owner": "alice"}).status_code == 404
    admin = sign_in(api, "admin", "admin-password-for-tests")
    page = admin.get("/workspaces/w/detail", params={"owner": "alice"})
    assert page.status_code == 200 and "of alice" in page.text
    assert 'action="/workspaces/w/detail/backup?owner=alice"' in page.text


def test_anonymous_is_sent_to_sign_in(api):
    with httpx.Client(base_url=api.url) as client:
        page = client.get("/workspaces/w/detail")
        change = client.post("/workspaces/w/detail/backup")
    assert (page.status_code, page.headers["location"]) == (
        303,
        "/login?next=%2Fworkspaces%2Fw%2Fdetail",
    )
    assert change.status_code == 401


# Actions ----------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["", "wrong"])
def test_an_action_without_the_csrf_token_is_refused(api, alice, token):
    before = operations(api)
    answer = alice.post("/workspaces/w/detail/backup", token=token)
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
    form = alice.request("POST", "/workspaces/w/detail/snapshot", data={"csrf_token": token})
    assert form.status_code == 403
    assert operations(api) == before


def test_back_up_now_queues_a_backup_shown_in_the_history(api, alice):
    answer = alice.post("/workspaces/w/detail/backup", headers=HTMX_REQUEST)
    assert answer.status_code == 200 and "w: backup queued." in answer.text
    assert answer.headers["hx-trigger"] == "detail-changed"
    assert operations(api)[0]["action"] == "backup"
    history = alice.get("/workspaces/w/detail/history").text
    assert "<td>backup</td>" in history and "<td>create</td>" in history


def history_if(browser: Browser, running: bool) -> str | None:
    """The history fragment if it shows (or does not show) an operation's progress
    events."""
    page = browser.get("/workspaces/w/detail/history").text
    shown = 'id="detail-progress"' in page and 'class="events"' in page
    return page if shown == running else None


def test_the_history_polls_while_an_operation_runs_and_shows_its_progress(api, alice):
    history = parse(alice.get("/workspaces/w/detail/history").text)
    assert "every 2s" not in history.all("section")[0]["hx-trigger"]  # nothing runs
    api.provider.delays["stop"] = 3.0  # the engine is slow to stop the container
    assert alice.post("/workspaces/w/stop", headers=HTMX_REQUEST).status_code == 200
    running = wait_for(
        lambda: history_if(alice, True),
        message="the stop's progress",
    )
    section = parse(running).all("section")[0]
    assert section["hx-trigger"].startswith("every 2s")
    assert "<strong>stop</strong> is" in running
    done = wait_for(
        lambda: history_if(alice, False),
        message="the stop's end",
    )
    assert "every 2s" not in parse(done).all("section")[0]["hx-trigger"]
    assert "<td>stop</td>" in done


def test_restore_is_queued_through_a_form_without_javascript(api, alice):
    form = {"csrf_token": alice.csrf}
    restore = alice.request("POST", f"/workspaces/w/detail/backups/{BACKUP_ID}/restore", data=form)
    assert (restore.status_code, restore.headers["location"]) == (303, "/workspaces/w/detail")
    assert operations(api)[0]["action"] == "restore"


def test_a_failed_action_is_one_line(api, alice):
    answer = alice.post("/workspaces/w/detail/backups/nope/restore", headers=HTMX_REQUEST)
    assert answer.status_code == 404 and answer.text.count('role="alert"') == 1
