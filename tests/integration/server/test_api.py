"""The REST API against the real application, served by uvicorn, on SQLite and on a real
PostgreSQL server. The provider and the workspaces' agents are the fault-injecting fakes of
``tests.fakes`` (no engine needed); the database, the HTTP server and the reconciler are real.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from dev8.client import Client
from dev8.core.errors import (
    AlreadyExists,
    Conflict,
    ImageNotFound,
    InvalidInput,
    NotFound,
    ProviderError,
    Unauthorized,
)
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Workspace
from dev8.store.store import utcnow
from tests.fakes import IMAGES
from tests.integration.server.live import ADMIN_PASSWORD, IMAGE, create


def test_health_metrics_and_openapi_need_no_login(api):
    anonymous = api.anonymous()
    assert anonymous.get("/healthz").json()["status"] == "ok"
    assert "dev8_http_requests_total" in anonymous.get("/metrics").text
    schema = anonymous.get("/api/v1/openapi.json").json()
    assert "/api/v1/workspaces/{name}/rebuild" in schema["paths"]


def test_login_gives_a_token_once_and_wrong_passwords_are_one_answer(api):
    anonymous = api.anonymous()
    good = anonymous.post(
        "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
    )
    assert good.status_code == 201 and good.json()["token"].startswith("dev8_")
    for name in ("admin", "nobody"):
        bad = anonymous.post("/api/v1/auth/login", json={"username": name, "password": "wrong!"})
        assert bad.status_code == 401
        assert bad.json() == {"error": "unauthorized", "message": "wrong user name or password"}
    token = good.json()["token"]
    with api.context.store.engine.connect() as connection:
        stored = connection.execute(text("SELECT token_hash, prefix FROM api_tokens")).all()
    assert all(token not in row.token_hash for row in stored)
    assert {row.prefix for row in stored} == {token[:12]}


def test_create_start_and_get_a_workspace_without_exposing_secrets(api):
    admin = api.admin()
    accepted = create(admin, "demo", secrets={"GITHUB_TOKEN": "ghp_topsecret"}, env={"A": "1"})
    assert [op["action"] for op in accepted["operations"]] == ["create", "start"]
    assert [op["result"] for op in api.settle(admin, accepted)] == ["succeeded", "succeeded"]
    workspace = admin.get("/api/v1/workspaces/demo").json()
    assert workspace["state"] == "running" and workspace["desired_state"] == "running"
    assert workspace["secret_names"] == ["GITHUB_TOKEN"] and workspace["env"] == {"A": "1"}
    # Relayed: only the agent is published; the IDE is reached through the server.
    assert set(workspace["ports"]) == {"agent"} and workspace["last_activity_at"] is not None
    assert workspace["ide_url"].endswith("/@admin/demo/")
    everything = json.dumps(
        [
            accepted,
            workspace,
            admin.get("/api/v1/workspaces").json(),
            admin.get("/api/v1/workspaces/demo/operations").json(),
            admin.get(f"/api/v1/operations/{accepted['operations'][0]['id']}").json(),
            admin.get("/api/v1/audit").json(),
        ]
    )
    assert "ghp_topsecret" not in everything
    with api.context.store.engine.connect() as connection:
        raw = connection.execute(text("SELECT secrets FROM workspaces")).scalar()
    assert "ghp_topsecret" not in str(raw) and "$sealed" in str(raw)  # encrypted at rest


def test_operations_carry_their_progress_events(api):
    admin = api.admin()
    accepted = create(admin, "events")
    created, started = api.settle(admin, accepted)
    detail = admin.get(f"/api/v1/operations/{created['id']}").json()
    assert [e["message"] for e in detail["events"]] == [
        "creating volumes and container",
        "state creating -> stopped",
    ]
    events = admin.get(f"/api/v1/operations/{started['id']}/events").json()
    assert "starting the container" in [e["message"] for e in events]
    later = admin.get(f"/api/v1/operations/{started['id']}/events?after={events[0]['seq']}")
    assert later.json() == events[1:]


def test_actions_record_the_desired_state_and_answer_202(api):
    admin = api.admin()
    api.settle(admin, create(admin, "acts"))
    stop = admin.post("/api/v1/workspaces/acts/stop")
    assert stop.status_code == 202
    assert stop.json()["workspace"]["desired_state"] == "stopped"
    api.settle(admin, stop.json())
    assert admin.get("/api/v1/workspaces/acts").json()["state"] == "stopped"
    for action in ("start", "restart"):
        answer = admin.post(f"/api/v1/workspaces/acts/{action}")
        assert answer.status_code == 202
        assert api.settle(admin, answer.json())[0]["result"] == "succeeded"
    rebuild = admin.post("/api/v1/workspaces/acts/rebuild", json={"image": "dev8/workspace:next"})
    assert api.settle(admin, rebuild.json())[0]["result"] == "succeeded"
    workspace = admin.get("/api/v1/workspaces/acts").json()
    assert (
        workspace["image_id"] == IMAGES["dev8/workspace:next"] and workspace["state"] == "running"
    )
    history = admin.get("/api/v1/workspaces/acts/operations").json()
    assert [op["action"] for op in history] == [
        "rebuild",
        "restart",
        "start",
        "stop",
        "start",
        "create",
    ]
    assert {op["actor"] for op in history} == {"admin"}


def test_bad_requests_change_nothing(api):
    admin = api.admin()
    api.settle(admin, create(admin, "dup"))
    before = admin.get("/api/v1/workspaces/dup/operations").json()
    cases = [
        ("post", "/api/v1/workspaces", {"name": "dup", "image": IMAGE}, 409, "already_exists"),
        ("post", "/api/v1/workspaces", {"name": "Bad_Name"}, 422, "invalid_input"),
        ("post", "/api/v1/workspaces", {"name": "x", "colour": "red"}, 422, "invalid_input"),
        ("post", "/api/v1/workspaces", {"name": "x", "image": "no/such:1"}, 404, "image_not_found"),
        ("post", "/api/v1/workspaces", {"name": "x", "env": {"DEV8_AGENT_TOKEN": "1"}}, 422, None),
        ("post", "/api/v1/workspaces", {"name": "x", "memory_mb": 10}, 422, "invalid_input"),
        ("post", "/api/v1/workspaces/dup/rebuild", {"image": "no/such:1"}, 404, "image_not_found"),
        ("post", "/api/v1/workspaces/nope/start", None, 404, "not_found"),
        ("patch", "/api/v1/workspaces/dup", {"idle_timeout_s": -1}, 422, "invalid_input"),
        ("get", "/api/v1/workspaces?after=garbage", None, 422, "invalid_input"),
        ("post", "/api/v1/workspaces?owner=ghost", {"name": "x", "image": IMAGE}, 404, None),
        ("get", "/api/v1/no/such/endpoint", None, 404, "not_found"),
        ("put", "/api/v1/workspaces/dup", {}, 405, "method_not_allowed"),
    ]
    for method, path, body, status, code in cases:
        answer = admin.request(method, path, json=body)
        assert answer.status_code == status, (path, body, answer.text)
        error = answer.json()
        assert set(error) == {"error", "message"} and "\n" not in error["message"]
        assert code is None or error["error"] == code, (path, error)
    broken = admin.post(
        "/api/v1/workspaces", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["error"] == "invalid_input"
    assert admin.get("/api/v1/workspaces/dup/operations").json() == before
    assert [w["name"] for w in admin.get("/api/v1/workspaces").json()["items"]] == ["dup"]


def test_list_filters_and_pages_through_every_workspace_once(api):
    admin = api.admin()
    api.member("zed")
    for owner in ("admin", "zed"):
        for number in range(23):
            add_record(api, f"ws-{number:02d}", owner, running=number % 3 == 0)
    seen, after = [], None
    while True:
        params = {"limit": 10, **({"after": after} if after else {})}
        page = admin.get("/api/v1/workspaces", params=params).json()
        seen += [(w["owner"], w["name"]) for w in page["items"]]
        if not page["next"]:
            break
        after = page["next"]
    assert len(seen) == 46 and len(set(seen)) == 46 and seen == sorted(seen)
    mine = admin.get("/api/v1/workspaces", params={"owner": "admin", "limit": 500}).json()
    assert len(mine["items"]) == 23 and mine["next"] is None
    running = admin.get(
        "/api/v1/workspaces", params={"owner": "zed", "state": "running", "limit": 500}
    ).json()["items"]
    assert [w["name"] for w in running] == [f"ws-{n:02d}" for n in range(0, 23, 3)]
    prefixed = admin.get("/api/v1/workspaces", params={"name_prefix": "ws-1", "limit": 500})
    assert len(prefixed.json()["items"]) == 20
    literal = admin.get("/api/v1/workspaces", params={"name_prefix": "ws_1"}).json()["items"]
    assert literal == []  # "_" is not a wildcard
    # A listing shows exactly what getting the workspace shows (the fast path included).
    one = admin.get("/api/v1/workspaces/ws-03", params={"owner": "zed"}).json()
    listed = admin.get("/api/v1/workspaces", params={"owner": "zed", "name_prefix": "ws-03"})
    assert listed.json()["items"] == [one]


def add_record(api, name: str, owner: str, running: bool) -> Workspace:
    """A workspace written straight to the store, with a fake container that agrees with
    it (so that the reconciler, which watches it, finds nothing to change)."""
    workspace = Workspace(
        id=f"{owner[:4]}{name}".replace("-", "")[:12],
        name=name,
        owner=owner,
        image_ref=IMAGE,
        image_id=IMAGES[IMAGE],
        resources=Resources(1, 1024),
        secrets={"DEV8_AGENT_TOKEN": "agent-token", "CODE_SERVER_PASSWORD": "password"},
        desired_state=DesiredState.RUNNING if running else DesiredState.STOPPED,
        observed_state=ObservedState.RUNNING if running else ObservedState.STOPPED,
        last_activity_at=utcnow(),
    )
    api.provider.create(api.context.service(owner, owner)._spec(workspace))
    if running:
        api.provider.start(workspace.id)
    else:
        api.provider.stop(workspace.id)
    return api.context.store.add(workspace)


def test_delete_keeps_volumes_recreate_adopts_them_and_purge_destroys_them(api):
    admin = api.admin()
    first = api.settle(admin, create(admin, "keep"))[0]
    workspace_id = first["workspace_id"]
    removed = admin.delete("/api/v1/workspaces/keep")
    assert removed.status_code == 202
    api.settle(admin, removed.json())
    assert admin.get("/api/v1/workspaces/keep").status_code == 404
    assert (
        workspace_id in api.provider.objects()[1] and workspace_id not in api.provider.objects()[0]
    )
    volumes = admin.get("/api/v1/workspaces/keep/volumes").json()
    assert len(volumes) == 3
    again = create(admin, "keep")
    assert again["workspace"]["id"] == workspace_id
    api.settle(admin, again)
    purge = admin.delete("/api/v1/workspaces/keep", params={"purge": "true"}).json()
    done = api.settle(admin, purge)[0]
    assert done["result"] == "succeeded" and len(done["outcome"]["destroyed_volumes"]) == 3
    assert api.provider.objects() == (set(), set())
    assert admin.get("/api/v1/workspaces/keep/operations").status_code == 404
    # The record of the purge outlives the workspace.
    assert admin.get(f"/api/v1/operations/{done['id']}").json()["workspace_id"] is None
    fresh = create(admin, "keep")
    assert fresh["workspace"]["id"] != workspace_id


def test_update_idle_timeout_at_once_and_resources_through_an_operation(api):
    admin = api.admin()
    api.settle(admin, create(admin, "tune", idle_timeout_s=600))
    assert admin.get("/api/v1/workspaces/tune").json()["effective_idle_timeout_s"] == 600
    off = admin.patch("/api/v1/workspaces/tune", json={"idle_timeout_s": 0})
    assert off.status_code == 200 and off.json()["operations"] == []
    assert off.json()["workspace"]["idle_timeout_s"] == 0
    default = admin.patch("/api/v1/workspaces/tune", json={"idle_timeout_s": None}).json()
    assert default["workspace"]["effective_idle_timeout_s"] == 1800
    bigger = admin.patch("/api/v1/workspaces/tune", json={"cpus": 3, "memory_mb": 3072})
    assert bigger.status_code == 202
    assert api.settle(admin, bigger.json())[0]["message"] == "applied new resources"
    workspace = admin.get("/api/v1/workspaces/tune").json()
    assert (workspace["cpus"], workspace["memory_mb"], workspace["state"]) == (3, 3072, "running")
    container = api.provider.containers[workspace["id"]]
    assert container.spec.resources == Resources(3, 3072) and container.state == "running"
    password = admin.patch("/api/v1/workspaces/tune", json={"ide_password": "new-ide-secret"})
    api.settle(admin, password.json())
    spec = api.provider.containers[workspace["id"]].spec
    assert spec.env["CODE_SERVER_PASSWORD"] == "new-ide-secret"
    assert "new-ide-secret" not in password.text


def test_a_provider_failure_is_a_failed_status_with_its_message(api):
    admin = api.admin()
    api.provider.fail("create", ProviderError("the Docker engine refused: no space left"))
    accepted = create(admin, "doomed")
    created, started = api.settle(admin, accepted)
    assert created["result"] == "failed" and "no space left" in created["message"]
    assert started["result"] == "failed" and started["message"].startswith("not run")
    workspace = admin.get("/api/v1/workspaces/doomed").json()
    assert workspace["state"] == "failed" and "no space left" in workspace["message"]
    assert api.provider.objects() == (set(), set())  # what the create made is gone
    api.provider.heal()
    retried = admin.post("/api/v1/workspaces/doomed/start")
    assert api.settle(admin, retried.json())[0]["result"] == "succeeded"
    assert admin.get("/api/v1/workspaces/doomed").json()["state"] == "running"


def test_tokens_are_listed_revoked_and_expire(api):
    admin = api.admin()
    created = admin.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 7})
    assert created.status_code == 201
    token = created.json()
    listed = admin.get("/api/v1/tokens").json()
    assert token["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)
    ci = api.anonymous()
    ci.headers["Authorization"] = f"Bearer {token['token']}"
    assert ci.get("/api/v1/users/me").status_code == 200
    assert admin.delete(f"/api/v1/tokens/{token['id']}").status_code == 204
    revoked = ci.get("/api/v1/users/me")
    assert revoked.status_code == 401 and "revoked" in revoked.json()["message"]
    other = admin.post("/api/v1/tokens", json={"name": "short"}).json()
    with api.context.store.engine.begin() as connection:
        connection.execute(
            text("UPDATE api_tokens SET expires_at = :at WHERE id = :id"),
            {"at": utcnow() - timedelta(seconds=1), "id": other["id"]},
        )
    ci.headers["Authorization"] = f"Bearer {other['token']}"
    expired = ci.get("/api/v1/users/me")
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    assert (
        admin.post("/api/v1/tokens", json={"name": "x", "expires_in_days": 999}).status_code == 422
    )


def test_logout_revokes_the_token_it_carries(api):
    admin = api.admin()
    assert admin.delete("/api/v1/tokens/current").status_code == 204
    assert admin.get("/api/v1/users/me").status_code == 401


def test_users_roles_and_their_limits(api):
    admin = api.admin()
    alice = api.member("alice")
    assert alice.get("/api/v1/users").status_code == 403
    assert (
        alice.post("/api/v1/users", json={"name": "eve", "password": "x" * 12}).status_code == 403
    )
    assert alice.patch("/api/v1/users/alice", json={"role": "admin"}).status_code == 403
    wrong = alice.patch("/api/v1/users/alice", json={"password": "new-password-123"})
    assert wrong.status_code == 403
    changed = alice.patch(
        "/api/v1/users/alice",
        json={"password": "new-password-123", "current_password": "alice-password-1234"},
    )
    assert changed.status_code == 200
    api.login("alice", "new-password-123")
    keys = alice.patch("/api/v1/users/alice", json={"ssh_keys": "not a key"})
    assert keys.status_code == 422
    assert admin.patch("/api/v1/users/admin", json={"role": "member"}).status_code == 409
    weak = admin.post("/api/v1/users", json={"name": "bob", "password": "short"})
    assert weak.status_code == 422 and "too short" in weak.json()["message"]
    api.settle(alice, create(alice, "mine"))
    assert admin.delete("/api/v1/users/alice").status_code == 409
    purge = alice.delete("/api/v1/workspaces/mine", params={"purge": "true"}).json()
    api.settle(alice, purge)
    assert admin.delete("/api/v1/users/alice").status_code == 204
    assert alice.get("/api/v1/users/me").status_code == 401  # tokens went with the user


def test_every_mutating_request_is_audited_and_only_admins_read_it(api):
    admin = api.admin()
    api.anonymous().post("/api/v1/auth/login", json={"username": "mallory", "password": "guess"})
    api.anonymous().post("/api/v1/workspaces", json={"name": "x"})
    # What a request claims is recorded as it can be stored (PostgreSQL refuses NUL).
    odd = api.anonymous().post("/api/v1/auth/login", json={"username": "x\x00y", "password": "p"})
    assert odd.status_code == 401
    assert admin.post("/api/v1/workspaces/a%00b/stop").status_code in (404, 422)
    create(admin, "audited", secrets={"GITHUB_TOKEN": "ghp_never_logged"})
    admin.get("/api/v1/workspaces")
    entries = admin.get("/api/v1/audit").json()["items"]
    assert [(e["actor"], e["method"], e["path"], e["status"]) for e in entries[:4]] == [
        ("admin", "POST", "/api/v1/workspaces", 202),
        ("admin", "POST", "/api/v1/workspaces/a\ufffdb/stop", entries[1]["status"]),
        ("x\ufffdy", "POST", "/api/v1/auth/login", 401),
        ("anonymous", "POST", "/api/v1/workspaces", 401),
    ]
    assert entries[4]["actor"] == "mallory"
    assert entries[4]["error"] == "unauthorized" and entries[0]["source"] == "127.0.0.1"
    assert all(e["method"] != "GET" for e in entries)
    assert "ghp_never_logged" not in json.dumps(entries) and "guess" not in json.dumps(entries)
    assert api.member("carol").get("/api/v1/audit").status_code == 403
    older = admin.get("/api/v1/audit", params={"limit": 2}).json()
    assert len(older["items"]) == 2 and older["next"] == older["items"][-1]["seq"]


def test_metrics_count_requests_operations_and_workspaces(api):
    admin = api.admin()
    api.settle(admin, create(admin, "counted"))
    body = api.anonymous().get("/metrics").text
    assert 'dev8_workspaces{state="running"} 1.0' in body
    assert 'dev8_operations_total{action="create",actor="user",result="succeeded"} 1.0' in body
    assert 'route="/api/v1/workspaces/{name}"' in body or 'route="/api/v1/workspaces"' in body


def test_the_sdk_raises_the_same_error_classes(api):
    token = api.admin().post("/api/v1/tokens", json={"name": "sdk"}).json()["token"]
    with Client(api.url, token=token) as client:
        workspace = client.workspaces.create("sdk", image=IMAGE).wait()
        assert workspace.state == "running" and workspace.to_workspace().secrets.keys() == set()
        assert [op.attrs["action"] for op in workspace.history()] == ["start", "create"]
        with pytest.raises(AlreadyExists):
            client.workspaces.create("sdk", image=IMAGE)
        with pytest.raises(NotFound):
            client.workspaces.get("nope")
        with pytest.raises(ImageNotFound):
            workspace.rebuild("no/such:image")
        with pytest.raises(InvalidInput):
            client.workspaces.create("Bad Name")
        api.provider.fail("stop", Conflict("injected: the engine is busy"))
        with pytest.raises(Conflict, match="injected"):
            workspace.stop().wait()
    with Client(api.url, token="dev8_wrong") as stranger, pytest.raises(Unauthorized):
        stranger.workspaces.list()
