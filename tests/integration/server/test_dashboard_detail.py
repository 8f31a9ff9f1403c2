"""A workspace's detail page (``/workspaces/{name}/detail``) against the real app under
uvicorn: its sections, who may see it, CSRF on its actions, backups and restores of the
volumes chosen, its history and the running operation's progress as server-sent events.

Stand-ins (no engine): the provider is ``tests.fakes``'s; the agent is ``FakeAgent`` that
also reports services, activity, disk use and dotfiles as a real agent's status does. The
fake provider cannot make a backup, so a kept one is written as the server keeps it, and the
tests check what a backup or restore is queued with (the operation's parameters, which the
service carries out) rather than its archives. An operation whose progress a test follows is
recorded by the test itself, as the runner records one (``driven``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
import pytest

from dev8.core.workspace import PENDING, RUNNING
from dev8.server.web.dashboard import stream
from dev8.store.store import Store
from tests.archives import member, write_archive
from tests.fakes import FakeAgent
from tests.integration.server.live import IMAGE, Api, create, wait_for
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
    assert restore["method"] == "get"  # to the page that names what it overwrites
    boxes = {i["id"]: i for i in parsed.all("input") if i.get("type") == "checkbox"}
    assert "checked" in boxes[f"restore-{BACKUP_ID}-home"]  # the backup holds home only
    assert f"restore-{BACKUP_ID}-system" not in boxes
    assert all("checked" in boxes[f"backup-{role}"] for role in ("home", "workspace", "system"))
    assert any(label.get("for") == "backup-home" for label in parsed.all("label"))
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
    assert answer.status_code == 200
    assert "w: backup of home, workspace and system queued." in answer.text
    assert answer.headers["hx-trigger"] == "detail-changed"
    assert operations(api)[0]["action"] == "backup"
    history = alice.get("/workspaces/w/detail/history").text
    assert "<td>backup</td>" in history and "<td>create</td>" in history


def test_restore_is_queued_through_a_form_without_javascript(api, alice):
    form = {"csrf_token": alice.csrf}
    restore = alice.request("POST", f"/workspaces/w/detail/backups/{BACKUP_ID}/restore", data=form)
    assert (restore.status_code, restore.headers["location"]) == (303, "/workspaces/w/detail")
    assert operations(api)[0]["action"] == "restore"


def test_a_failed_action_is_one_line(api, alice):
    answer = alice.post("/workspaces/w/detail/backups/nope/restore", headers=HTMX_REQUEST)
    assert answer.status_code == 404 and answer.text.count('role="alert"') == 1


# Volumes chosen for backups and restores -----------------------------------------------------
def params_of_new(api: Api, before: list[dict], action: str) -> list[dict]:
    """The parameters of the ``action`` operations queued since ``before``, oldest first."""
    seen = {op["id"] for op in before}
    new = [op for op in reversed(operations(api)) if op["id"] not in seen]
    return [
        api.context.store.get_operation(op["id"]).params for op in new if op["action"] == action
    ]


@pytest.mark.parametrize(
    ("checked", "volumes", "said"),
    [
        (["home"], ["home"], "home"),
        (["home", "system"], ["home", "system"], "home and system"),
        (["home", "workspace", "system"], ["all"], "home, workspace and system"),
    ],
)
def test_a_backup_is_of_the_volumes_checked(api, alice, checked, volumes, said):
    """All three are one backup of all; fewer are one backup each (the API takes one volume
    or all), so a backup of home alone holds home alone."""
    before = operations(api)
    form = {"csrf_token": alice.csrf, "volume": ["", *checked]}
    answer = alice.request("POST", "/workspaces/w/detail/backup", data=form, headers=HTMX_REQUEST)
    assert answer.status_code == 200 and f"w: backup of {said} queued." in answer.text
    queued = params_of_new(api, before, "backup")
    assert [params["volume"] for params in queued] == volumes


def test_a_form_with_no_volume_checked_is_refused(api, alice):
    before = operations(api)
    form = {"csrf_token": alice.csrf, "volume": [""]}
    answer = alice.request("POST", "/workspaces/w/detail/backup", data=form, headers=HTMX_REQUEST)
    assert answer.status_code == 422 and "choose at least one volume" in answer.text
    evil = {"csrf_token": alice.csrf, "volume": ["", "../etc"]}
    answer = alice.request("POST", "/workspaces/w/detail/backup", data=evil, headers=HTMX_REQUEST)
    assert answer.status_code == 422 and answer.text.count('role="alert"') == 1
    assert operations(api) == before


def test_restore_names_the_volumes_it_overwrites_then_restores_only_those(api, alice):
    """The backup holds home only: restoring home asks first, naming it and its volume, and
    queues a restore of that archive alone; system, which it does not hold, is refused."""
    page = alice.get(
        f"/workspaces/w/detail/backups/{BACKUP_ID}/restore", params={"volume": ["", "home"]}
    )
    assert page.status_code == 200, page.text
    parsed = assert_safe_page(page)
    assert "overwrites the <strong>home</strong> volume of <strong>w</strong>" in page.text
    home_volume = next(v for v in api.context.provider.volumes() if v.role == "home").name
    assert f"<code>{home_volume}</code>" in page.text
    form = parsed.all("form")[-1]
    assert form["action"] == f"/workspaces/w/detail/backups/{BACKUP_ID}/restore"
    fields = [(i["name"], i["value"]) for i in parsed.all("input") if i.get("name") == "volume"]
    assert fields == [("volume", ""), ("volume", "home")]

    before = operations(api)
    data = {"csrf_token": alice.csrf, "volume": ["", "home"]}
    done = alice.request("POST", form["action"], data=data)
    assert (done.status_code, done.headers["location"]) == (303, "/workspaces/w/detail")
    assert params_of_new(api, before, "restore") == [{"backup_id": BACKUP_ID, "files": [ARCHIVE]}]

    refused = alice.get(
        f"/workspaces/w/detail/backups/{BACKUP_ID}/restore", params={"volume": ["", "system"]}
    )
    assert refused.status_code == 404 and "holds no system volume" in refused.text


def test_a_snapshot_restore_of_two_volumes_is_asked_then_queued_one_each(api, alice):
    page = alice.get(
        "/workspaces/w/detail/snapshots/latest/restore",
        params={"volume": ["", "home", "workspace"]},
    )
    assert page.status_code == 200, page.text
    assert "overwrites the <strong>home and workspace</strong> volumes" in page.text
    before = operations(api)
    data = {"csrf_token": alice.csrf, "volume": ["", "home", "workspace"]}
    answer = alice.request(
        "POST", "/workspaces/w/detail/snapshots/latest/restore", data=data, headers=HTMX_REQUEST
    )
    assert "w: restore of home and workspace from snapshot latest queued." in answer.text
    queued = params_of_new(api, before, "snapshot-restore")
    assert queued == [
        {"snapshot_id": "latest", "volume": "home"},
        {"snapshot_id": "latest", "volume": "workspace"},
    ]


def test_another_member_cannot_see_a_restore_page(api, bob):
    path = f"/workspaces/w/detail/backups/{BACKUP_ID}/restore"
    assert bob.get(path, params={"owner": "alice"}).status_code == 404
    assert bob.get("/workspaces/w/detail/snapshots/latest/restore").status_code == 404


# The running operation's progress, streamed ---------------------------------------------------
@dataclass
class Driven:
    """An operation the test carries out itself, recording its progress as the runner would."""

    store: Store
    id: str

    def say(self, message: str) -> int:
        return self.store.add_event(self.id, message).seq

    def finish(self, result: str = "succeeded", message: str = "") -> None:
        self.store.finish_operation(self.id, result, message)


@contextmanager
def driven(
    api: Api, name: str = "w", owner: str = "alice", result: str = RUNNING
) -> Iterator[Driven]:
    """A running (or, with ``result``, pending) backup of ``owner``'s ``name`` that the test
    drives. The test holds the workspace's lock meanwhile, as the runner does while it runs
    one, so the reconciler leaves it alone."""
    store = api.context.store
    found = store.page(owner=owner, include_removed=True, limit=100)
    workspace = next(w for w in found if w.name == name)
    with store.lock(workspace.id):
        operation = store.start_operation(workspace, "backup", owner, result=result)
        try:
            yield Driven(store, operation.id)
        finally:
            if store.get_operation(operation.id).result in (PENDING, RUNNING):
                store.finish_operation(operation.id, "failed", "the test ended")


def events_of(answer: httpx.Response) -> Iterator[dict]:
    """The server-sent events of a streamed answer, as they come: name, id, data, and the
    comments seen since the previous one."""
    event: dict = {"comments": []}
    for line in answer.iter_lines():
        if not line:
            if "data" in event:  # not the retry field alone
                yield event
                event = {"comments": []}
            continue
        field, _, value = line.partition(":")
        if field == "":
            event["comments"].append(value.strip())
        else:
            event[field] = value.removeprefix(" ")


def stream_path(operation_id: str, name: str = "w") -> str:
    return f"/workspaces/{name}/detail/operations/{operation_id}/events"


@contextmanager
def streaming(browser: Browser, path: str, **options) -> Iterator[httpx.Response]:
    headers = {"Cookie": f"dev8_session={browser.cookie}", **options.pop("headers", {})}
    with (
        httpx.Client(base_url=browser.url, timeout=30) as client,
        client.stream("GET", path, headers=headers, **options) as answer,
    ):
        yield answer


def test_the_stream_sends_each_line_as_it_comes_then_the_end(api, alice):
    with driven(api) as operation:
        first = operation.say("staging the home volume")
        with streaming(alice, stream_path(operation.id)) as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            assert answer.headers["cache-control"] == "no-store"
            events = events_of(answer)
            got = next(events)
            assert (got["event"], got["id"]) == ("line", str(first))
            assert json.loads(got["data"])["message"] == "staging the home volume"
            operation.say("home: 5 MiB written\nand a second line")  # sent after the first
            got = next(events)
            line = json.loads(got["data"])
            assert line["message"] == "home: 5 MiB written\nand a second line"
            assert line["at"].endswith(" UTC")
            operation.finish("succeeded", "backup 1 kept")
            end = next(events)
            assert end["event"] == "end"
            assert json.loads(end["data"]) == {"result": "succeeded", "message": "backup 1 kept"}
            assert next(events, None) is None  # and the stream is closed


def test_a_reconnecting_browser_resumes_after_the_last_line_it_got(api, alice):
    with driven(api) as operation:
        seqs = [operation.say(f"line {n}") for n in range(3)]
        operation.finish()
    path = stream_path(operation.id)
    with streaming(alice, path, headers={"Last-Event-ID": str(seqs[0])}) as answer:
        got = [(e["event"], json.loads(e["data"])["message"]) for e in events_of(answer)]
    assert got == [("line", "line 1"), ("line", "line 2"), ("end", "")]
    with streaming(alice, path, params={"after": seqs[1]}) as answer:
        assert [e["event"] for e in events_of(answer)] == ["line", "end"]


def test_the_history_follows_the_running_operation_and_shows_the_latest_when_done(api, alice):
    with driven(api) as operation:
        seq = operation.say("staging the home volume")
        history = alice.get("/workspaces/w/detail/history").text
        lines = next(o for o in parse(history).all("ol") if o.get("id") == "progress-lines")
        assert lines["data-stream"] == f"{stream_path(operation.id)}?after={seq}"
        assert "Now: <strong>backup</strong>" in history and "staging the home volume" in history
        assert "every" not in parse(history).all("section")[0]["hx-trigger"]  # no polling
        operation.finish("failed", "disk full")
    history = alice.get("/workspaces/w/detail/history").text
    assert "data-stream" not in history
    assert "Latest: <strong>backup</strong>" in history and "failed: disk full" in history
    assert "staging the home volume" in history  # the lines stay as plain text
    admin = sign_in(api, "admin", "admin-password-for-tests")
    shown = admin.get("/workspaces/w/detail/history", params={"owner": "alice"}).text
    assert "staging the home volume" in shown


def test_the_stream_refuses_anonymous_and_other_members_and_lets_an_admin_in(api, alice, bob):
    with driven(api) as operation:
        operation.say("a line")
        operation.finish()
    path = stream_path(operation.id)
    with httpx.Client(base_url=api.url) as anonymous:
        refused = anonymous.get(path)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login?next=")
    assert bob.get(path).status_code == 404
    assert bob.get(path, params={"owner": "alice"}).status_code == 404
    admin = sign_in(api, "admin", "admin-password-for-tests")
    with streaming(admin, path, params={"owner": "alice"}) as answer:
        assert [e["event"] for e in events_of(answer)] == ["line", "end"]
    # An operation of another workspace, or none, through this workspace's address: 404.
    alice_api = api.login("alice", "alice-password-1234")
    api.settle(alice_api, create(alice_api, "v"))
    assert alice.get(stream_path(operation.id, "v")).status_code == 404
    assert alice.get(stream_path("no-such-operation")).status_code == 404


def test_a_user_has_at_most_a_few_streams_and_a_closed_one_frees_its_place(api, alice):
    slots: stream.StreamSlots = api.live.app.state.progress_streams
    with driven(api) as operation, ExitStack() as open_streams:
        path = stream_path(operation.id)
        for _ in range(slots.limit):
            answer = open_streams.enter_context(streaming(alice, path))
            assert answer.status_code == 200
        assert slots.open_for("alice") == slots.limit
        refused = alice.get(path)
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_requests"
        admin = sign_in(api, "admin", "admin-password-for-tests")
        with streaming(admin, path, params={"owner": "alice"}) as answer:
            assert answer.status_code == 200  # another user's count
        open_streams.close()  # the browser goes away: the server notices and ends them
        wait_for(lambda: slots.open_for("alice") == 0, message="the streams' end")
        with streaming(alice, path) as answer:
            assert answer.status_code == 200


def test_an_idle_stream_sends_heartbeats_and_ends_at_its_longest(api, alice, monkeypatch):
    """Shortened bounds (the same code): a heartbeat at every read, and a stream that lasts
    one read, which ends without an end event so that the browser reconnects."""
    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.0)
    with driven(api) as operation:
        with streaming(alice, stream_path(operation.id)) as answer:
            lines = answer.iter_lines()
            assert next(line for line in lines if line.startswith(":")) == ": keep-alive"
        monkeypatch.setattr(stream, "MAX_S", 0.0)
        with streaming(alice, stream_path(operation.id)) as answer:
            assert answer.read().decode() == f"retry: {stream.RETRY_MS}\n\n"


def test_the_page_of_a_workspace_being_created_follows_its_create(api, alice):
    """Where the create form could lead: the page of a workspace whose container is still
    being made (the fake engine is slow to create it) shows the create under way."""
    api.provider.delays["create"] = 4.0
    accepted = create(api.login("alice", "alice-password-1234"), "slow")
    operation_id = accepted["operations"][0]["id"]
    page = alice.get("/workspaces/slow/detail")
    assert page.status_code == 200, page.text
    assert "<strong>create</strong>" in page.text
    lines = next(o for o in parse(page.text).all("ol") if o.get("id") == "progress-lines")
    assert lines["data-stream"].startswith(stream_path(operation_id, "slow"))
    with streaming(alice, stream_path(operation_id, "slow")) as answer:
        assert list(events_of(answer))[-1]["event"] == "end"
