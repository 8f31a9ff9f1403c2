"""Issue 16, item 16 (the writable layer): no engine here bounds what a container writes
outside its volumes (overlay2 over ext4 has no size option), so a member could fill the
host's disk through `/tmp` or `apt install` even with enforced volume quotas. The server now
checks every running workspace's layer on a cadence (`DEV8_LAYER_CHECK_INTERVAL_S`) and
stops one beyond `DEV8_MEMBER_MAX_WRITABLE_LAYER`, saying why in its history; others are
left alone.

The server is the real application (uvicorn, reconciler threads, SQLite) with the fake
provider, whose containers report the layer size the test gives them (the engine's own
measure, `SizeRw`, is read by `DockerVolumes.writable_layers`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev8.server.settings import Settings
from tests.databases import sqlite_url
from tests.integration.server.live import Api, create, serving, wait_for

GIB = 1024**3


@pytest.fixture
def api(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Api]:
    database = tmp_path / "server.db"
    shutil.copy(migrated_sqlite, database)
    with serving(
        tmp_path,
        sqlite_url(database),
        member_max_writable_layer=2 * GIB,
        layer_check_interval_s=0.2,
    ) as api:
        yield api


def history(client, name: str) -> list[dict]:
    return client.get(f"/api/v1/workspaces/{name}/operations").json()


def test_a_workspace_writing_past_the_layer_limit_is_stopped_and_told_why(api: Api):
    alice = api.member("alice")
    api.settle(alice, create(alice, "filler"))
    api.settle(alice, create(alice, "modest"))
    store = api.context.store
    filler, modest = store.find("alice", "filler"), store.find("alice", "modest")
    assert filler is not None and modest is not None
    api.provider.containers[modest.id].layer_bytes = GIB  # within the limit
    api.provider.containers[filler.id].layer_bytes = 3 * GIB  # `dd of=/tmp/fill`

    stops = wait_for(
        lambda: [op for op in history(alice, "filler") if op["actor"] == "layer-limit"],
        timeout=20,
        message="the layer limit's stop",
    )
    assert stops[0]["action"] == "stop"
    done = api.wait_operation(alice, stops[0]["id"])  # its message is set when it runs
    assert "3.0 GiB outside /home/dev8 and /workspace" in done["message"], done
    assert alice.get("/api/v1/workspaces/filler").json()["state"] == "stopped"
    # The other workspace was checked at the same passes and left running.
    api.watch.observed(passes=3)
    assert [op["actor"] for op in history(alice, "modest")] == ["alice", "alice"]
    assert alice.get("/api/v1/workspaces/modest").json()["state"] == "running"


def test_the_limit_is_a_size_setting_and_zero_turns_it_off():
    assert Settings(member_max_writable_layer="50g").member_max_writable_layer == 50 * GIB
    assert Settings(member_max_writable_layer="0").member_max_writable_layer == 0
    with pytest.raises(ValueError, match="member_max_writable_layer"):
        Settings(member_max_writable_layer="lots")
