"""``dev8 server`` on the ACI provider: the real application, database and reconciler, the
provider over real HTTPS through the Azure SDKs against the ARM stand-in (``armstandin``:
not Azure, no ARM emulator exists). The first test's agents are the fake of ``tests.fakes``
(a group's address leads nowhere there); the second runs the groups on the Docker engine
and the server talks to the real agent in them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dev8.core.images import workspace_image
from dev8.server.app import create_app
from tests.integration.aci.armstandin import DockerRunner
from tests.integration.aci.standin import aci_standin
from tests.integration.server.conftest import cheap_password_hashes  # noqa: F401 (autouse)
from tests.integration.server.live import (
    Api,
    LiveServer,
    ReconcilerWatch,
    serving,
    settings_for,
    wait_for,
)

IMAGE = "dev8registry.azurecr.io/dev8-workspace:1"


def test_a_group_lost_behind_the_servers_back_is_deployed_again(tmp_path: Path, database_url: str):
    """The group is deleted outside dev8 (as Azure may lose one); the reconciler sees the
    workspace not running while it should, queues a start, and the start deploys a new group
    on the same shares."""
    with (
        aci_standin() as azure,
        serving(
            tmp_path,
            database_url,
            provider=azure.provider,
            images=IMAGE,  # type: ignore[arg-type]
        ) as api,
    ):
        admin = api.admin()
        accepted = admin.post("/api/v1/workspaces", json={"name": "lost", "image": IMAGE})
        assert accepted.status_code == 202, accepted.text
        assert [op["result"] for op in api.settle(admin, accepted.json())] == ["succeeded"] * 2
        workspace = api.context.store.find("admin", "lost")
        group = f"dev8-{workspace.id}"
        shares = dict(azure.state.shares)
        assert len(shares) == 3 and group in azure.state.groups

        azure.state.groups.pop(group)

        def history() -> list[dict]:
            return admin.get("/api/v1/workspaces/lost/operations").json()

        wait_for(lambda: history()[0]["actor"] == "reconciler", message="a start queued")
        wait_for(lambda: history()[0]["result"] == "succeeded", message="the start done")
        assert history()[0]["action"] == "start"
        assert admin.get("/api/v1/workspaces/lost").json()["state"] == "running"
        assert group in azure.state.groups
        assert azure.state.shares == shares, "the shares are untouched"


@pytest.fixture
def docker_runner() -> Iterator[DockerRunner]:
    runner = DockerRunner()
    try:
        yield runner
    finally:
        runner.clean()


@pytest.mark.engine
def test_the_server_runs_stops_and_starts_a_workspace_with_its_real_agent(
    tmp_path: Path, database_url: str, docker_runner: DockerRunner
):
    """Created, healthy (the server's own check of the agent at the group's address), stopped
    (the agent's sync asked for and answered first, then the group deleted) and started again
    (a new group) through the API; purged: no group, share or record left."""
    with aci_standin(docker_runner) as azure:
        settings = settings_for(tmp_path, database_url, images=workspace_image())
        app = create_app(settings, provider=azure.provider)  # type: ignore[arg-type]
        with LiveServer(app) as live:
            api = Api(live, azure.provider, None, ReconcilerWatch(app.state.reconciler))  # type: ignore[arg-type]
            try:
                admin = api.admin()
                made = admin.post(
                    "/api/v1/workspaces", json={"name": "real", "image": workspace_image()}
                )
                assert made.status_code == 202, made.text
                results = [op["result"] for op in api.settle(admin, made.json(), timeout=240)]
                assert results == ["succeeded"] * 2
                assert admin.get("/api/v1/workspaces/real").json()["state"] == "running"
                workspace = api.context.store.find("admin", "real")
                for action, state in (("stop", "stopped"), ("start", "running")):
                    accepted = admin.post(f"/api/v1/workspaces/real/{action}")
                    assert accepted.status_code == 202, accepted.text
                    ops = api.settle(admin, accepted.json(), timeout=240)
                    assert [op["result"] for op in ops] == ["succeeded"], ops
                    assert admin.get("/api/v1/workspaces/real").json()["state"] == state
                    assert (f"dev8-{workspace.id}" in azure.state.groups) is (state == "running")
                    if action == "stop":  # the agent synced before its group went
                        said = [event["message"] for event in ops[0]["events"]]
                        assert any("saving /home/dev8" in line for line in said), said
                        assert not any("warning" in line for line in said), said
                removed = admin.delete("/api/v1/workspaces/real", params={"purge": "true"})
                assert removed.status_code == 202, removed.text
                ops = api.settle(admin, removed.json(), timeout=240)
                assert [op["result"] for op in ops] == ["succeeded"] * len(ops), ops
                assert azure.state.groups == {} and azure.state.shares == {}
                assert not azure.provider.records.path(workspace.id).exists()
            finally:
                for client in api.clients:
                    client.close()
        api.context.store.engine.dispose()
