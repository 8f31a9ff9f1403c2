"""Attacks (issue 16, item 5, and item 12's "any image on the engine is accepted"): a member
takes more of a shared server than the admin allows, or pins a workspace onto the server's
own port. Before the fix every request here was accepted (256 CPUs, 1 TiB of memory, the
API's port, any image the engine had, 200 env values of 64 KiB, backups without end, and
backups left behind by a purge); now each is refused with one line naming the limit and its
setting, and nothing is recorded.

The server is the real application (uvicorn, reconciler, SQLite) with the fake provider of
``tests.fakes`` (no engine). The fake has no volumes to archive, so where a backup must
succeed, the archive writing is a stand-in (``ArchiveStandIn``, below) that writes no
archive; the server's handling of the backup around it (folders, counting, limits, purge)
is the real one."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from dev8.service import kept_backups
from tests.databases import sqlite_url
from tests.integration.server.live import IMAGE, Api, create, serving, wait_for

OTHER_IMAGE = "dev8/workspace:next"  # on the engine (the fake's), not offered to members


@pytest.fixture
def make_api(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Callable[..., Api]]:
    database = tmp_path / "server.db"
    shutil.copy(migrated_sqlite, database)
    with ExitStack() as stack:
        yield lambda **settings: stack.enter_context(
            serving(tmp_path, sqlite_url(database), **settings)
        )


def refused(answer: httpx.Response, setting: str, status: int = 403) -> str:
    """The one-line message of a refusal that names ``setting``."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    if status == 403:
        assert body["error"] == "policy_refused", body
    assert setting in body["message"] and "\n" not in body["message"], body
    return body["message"]


def names(client: httpx.Client) -> list[str]:
    return [w["name"] for w in client.get("/api/v1/workspaces").json()["items"]]


def test_a_member_gets_no_256_cpus_nor_a_tebibyte_of_memory(make_api):
    api = make_api()
    mallory = api.member("mallory")
    big = {"name": "big", "image": IMAGE}
    refused(mallory.post("/api/v1/workspaces", json={**big, "cpus": 256}), "DEV8_MEMBER_MAX_CPUS")
    refused(
        mallory.post("/api/v1/workspaces", json={**big, "memory_mb": 1048576}),
        "DEV8_MEMBER_MAX_MEMORY",
    )
    assert names(mallory) == []

    api.settle(mallory, create(mallory, "small", size="large"))  # 8 CPUs, 16 GiB: allowed
    grow = mallory.patch("/api/v1/workspaces/small", json={"cpus": 64, "memory_mb": 262144})
    refused(grow, "DEV8_MEMBER_MAX_CPUS")
    assert mallory.get("/api/v1/workspaces/small").json()["cpus"] == 8

    # An admin grants more by doing it (exempt from the per-member limits).
    admin = api.admin()
    answer = admin.post("/api/v1/workspaces?owner=mallory", json={**big, "cpus": 64})
    assert answer.status_code == 202, answer.text


def test_nobody_pins_a_workspace_onto_the_servers_own_port(make_api):
    """The API's port is the configured one (DEV8_PORT, 8700 here; the test server itself
    listens on a free port): a workspace holding it would keep the server from starting."""
    api = make_api(member_pin_ports=True)
    own = api.context.settings.port
    for client in (api.member("mallory"), api.admin()):
        answer = client.post("/api/v1/workspaces", json={"name": "x", "ide_port": own})
        refused(answer, "DEV8_PORT")
        answer = client.post("/api/v1/workspaces", json={"name": "x", "ssh_port": 22})
        assert answer.status_code == 422, answer.text  # privileged: never
        assert "x" not in names(client)
    mallory = api.login("mallory", "mallory-password-1234")
    assert mallory.post("/api/v1/workspaces", json={"name": "y", "ssh_port": 42022}).is_success


def test_members_pin_no_host_ports_unless_the_admin_allows(make_api):
    api = make_api()
    mallory = api.member("mallory")
    answer = mallory.post("/api/v1/workspaces", json={"name": "x", "ide_port": 48080})
    refused(answer, "DEV8_MEMBER_PIN_PORTS")
    admin = api.admin()
    assert admin.post("/api/v1/workspaces", json={"name": "x", "ide_port": 48080}).is_success


def test_a_member_has_no_more_workspaces_than_allowed_even_asking_all_at_once(make_api):
    api = make_api(member_max_workspaces=3)
    mallory = api.member("mallory")

    def body(n: int) -> dict[str, Any]:
        return {"name": f"w{n}", "start": False}

    def ask(n: int) -> httpx.Response:
        return mallory.post("/api/v1/workspaces", json=body(n))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert sorted(a.status_code for a in answers) == [202] * 3 + [403] * 5
    refused(next(a for a in answers if a.status_code == 403), "DEV8_MEMBER_MAX_WORKSPACES")
    assert len(names(mallory)) == 3
    for answer in answers:
        if answer.status_code == 202:
            api.settle(mallory, answer.json())

    # A removed workspace keeps its volumes, and counts; a purged one is gone.
    first = names(mallory)[0]
    api.settle(mallory, mallory.delete(f"/api/v1/workspaces/{first}").json())
    refused(mallory.post("/api/v1/workspaces", json=body(9)), "DEV8_MEMBER_MAX_WORKSPACES")
    api.settle(mallory, mallory.delete(f"/api/v1/workspaces/{first}?purge=true").json())
    assert mallory.post("/api/v1/workspaces", json=body(9)).status_code == 202


def test_a_members_quotas_together_stay_within_the_limit(make_api):
    api = make_api(member_max_quota="300g")  # the default quotas are 120 GiB a workspace
    mallory = api.member("mallory")
    huge = {"name": "huge", "start": False, "quotas": {"workspace": 1 << 40}}
    refused(mallory.post("/api/v1/workspaces", json=huge), "DEV8_MEMBER_MAX_QUOTA")
    for name in ("a", "b"):
        api.settle(mallory, create(mallory, name, start=False))
    refused(mallory.post("/api/v1/workspaces", json={"name": "c"}), "DEV8_MEMBER_MAX_QUOTA")
    small = {"name": "c", "start": False, "quotas": {"home": 1 << 30, "workspace": 1 << 30}}
    assert mallory.post("/api/v1/workspaces", json=small).status_code == 202


def test_a_member_runs_only_the_images_the_admin_offers(make_api):
    """Before: any image the engine had (``dev8/workspace:next`` here) was accepted."""
    api = make_api(images=IMAGE)
    mallory = api.member("mallory")
    other = {"name": "other", "image": OTHER_IMAGE}
    refused(mallory.post("/api/v1/workspaces", json=other), "DEV8_IMAGES")
    # Refused before the engine is asked: no telling which images it has.
    refused(
        mallory.post("/api/v1/workspaces", json={"name": "x", "image": "no/such:1"}), "DEV8_IMAGES"
    )
    assert names(mallory) == []

    api.settle(mallory, create(mallory, "mine"))
    rebuild = mallory.post("/api/v1/workspaces/mine/rebuild", json={"image": OTHER_IMAGE})
    refused(rebuild, "DEV8_IMAGES")
    again = mallory.post("/api/v1/workspaces/mine/rebuild")  # its own image, resolved again
    assert api.settle(mallory, again.json())[0]["result"] == "succeeded"

    admin = api.admin()  # admins are not bound: they try an image before offering it
    assert admin.post("/api/v1/workspaces", json=other).status_code == 202


def test_env_and_secrets_are_bounded_in_count_and_size(make_api):
    """Before: 200 env values of 64 KiB per workspace (a 52 MB admin listing page)."""
    api = make_api()
    mallory = api.member("mallory")
    fat = {f"V{n}": "x" * 65536 for n in range(15)}  # within the server's body limit
    answer = mallory.post("/api/v1/workspaces", json={"name": "fat", "env": fat})
    assert answer.status_code == 422, answer.text[:300]
    numerous = {f"V{n}": "x" for n in range(200)}
    answer = mallory.post("/api/v1/workspaces", json={"name": "fat", "secrets": numerous})
    assert answer.status_code == 422, answer.text[:300]
    many = {f"V{n}": "x" * 1024 for n in range(40)}  # each value fine, 40 KiB in all
    for field in ("env", "secrets"):
        answer = mallory.post("/api/v1/workspaces", json={"name": "fat", field: many})
        assert answer.status_code == 422 and "bytes in all" in answer.json()["message"]
    wide = "é" * 9000  # 9000 characters, 18000 bytes
    answer = mallory.post("/api/v1/workspaces", json={"name": "fat", "env": {"W": wide}})
    assert answer.status_code == 422 and "bytes" in answer.json()["message"]
    assert names(mallory) == []
    most = {f"V{n}": "x" * 300 for n in range(100)}
    assert create(mallory, "full", env=most, secrets=most)["workspace"]["env"] == most


class ArchiveStandIn:
    """Stands in for ``BackupService`` in ``dev8.service.kept_backups``: writes no archive
    (the fake provider has no volumes), and holds each backup until ``release`` is set."""

    release = threading.Event()

    def __init__(self, _service: Any) -> None:
        pass

    def backup(self, _name: str, **_options: Any) -> list:
        assert self.release.wait(30)
        return []


@pytest.fixture
def archive_stand_in(monkeypatch) -> type[ArchiveStandIn]:
    ArchiveStandIn.release = threading.Event()
    monkeypatch.setattr(kept_backups, "BackupService", ArchiveStandIn)
    return ArchiveStandIn


def kept(api: Api, workspace_id: str) -> int:
    return api.context.kept_backups.count([workspace_id])


def test_a_member_keeps_no_more_backups_than_allowed_even_queued_at_once(
    make_api, archive_stand_in
):
    """Four backups asked for before the first ends all pass the check on asking (none is
    kept yet); the limit holds when each starts: two are kept, two fail with the reason."""
    api = make_api(member_max_kept_backups=2)
    mallory = api.member("mallory")
    workspace = create(mallory, "keep", start=False)["workspace"]
    answers = [mallory.post("/api/v1/workspaces/keep/backups") for _ in range(4)]
    assert [a.status_code for a in answers] == [202] * 4
    archive_stand_in.release.set()
    results = [api.settle(mallory, a.json())[0] for a in answers]
    assert [r["result"] for r in results] == ["succeeded"] * 2 + ["failed"] * 2
    assert "DEV8_MEMBER_MAX_KEPT_BACKUPS" in results[-1]["message"]
    assert kept(api, workspace["id"]) == 2

    refused(mallory.post("/api/v1/workspaces/keep/backups"), "DEV8_MEMBER_MAX_KEPT_BACKUPS")
    # Another workspace of hers counts towards the same limit.
    create(mallory, "other", start=False)
    refused(mallory.post("/api/v1/workspaces/other/backups"), "DEV8_MEMBER_MAX_KEPT_BACKUPS")


def test_purging_a_workspace_takes_its_kept_backups_with_it(make_api, archive_stand_in):
    """Before: the archives stayed in the server's directory, reachable by nobody."""
    api = make_api()
    mallory = api.member("mallory")
    workspace = create(mallory, "gone", start=False)["workspace"]
    archive_stand_in.release.set()
    for _ in range(2):
        api.settle(mallory, mallory.post("/api/v1/workspaces/gone/backups").json())
    folder = api.context.kept_backups.root / workspace["id"]
    assert kept(api, workspace["id"]) == 2
    purge = mallory.delete("/api/v1/workspaces/gone?purge=true").json()
    [done] = api.settle(mallory, purge)
    assert done["result"] == "succeeded" and done["outcome"]["deleted_backups"] == 2
    wait_for(lambda: not folder.exists(), message="the backups' deletion")
