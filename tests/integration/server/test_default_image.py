"""The image a workspace runs when its creator names none: the server's first of
``DEV8_IMAGES`` (on a cluster, a reference its nodes can pull), through the API and the SDK
as `dev8 up` in server mode sends it (real server and database, fake provider)."""

from __future__ import annotations

from dev8.client import Client
from dev8.core.images import workspace_image
from dev8.server.settings import Settings
from tests.integration.server.live import settings_for

FIRST, SECOND = "dev8/workspace:next", "dev8/workspace:test"


def test_without_an_image_a_workspace_runs_the_servers_first_one(make_api):
    api = make_api(images=f"{FIRST}, {SECOND}")
    member = api.member("alice")
    accepted = member.post("/api/v1/workspaces", json={"name": "plain", "start": False})
    assert accepted.status_code == 202, accepted.text
    api.settle(member, accepted.json())
    assert member.get("/api/v1/workspaces/plain").json()["image"] == FIRST

    token = member.headers["Authorization"].removeprefix("Bearer ")
    with Client(api.url, token=token) as sdk:
        sdk.workspaces.create("chosen", image=SECOND, start=False).wait()
        assert sdk.workspaces.get("chosen").attrs["image"] == SECOND


def test_the_default_is_the_first_image_or_the_built_one(tmp_path):
    given = settings_for(tmp_path, "sqlite://", images=f" {FIRST} ,{SECOND},{FIRST}")
    assert given.default_image() == FIRST
    assert Settings(server_dir=tmp_path, dev=True, images="").default_image() == workspace_image()
