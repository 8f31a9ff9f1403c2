"""The frame every restore shares (``Restores.run``) on the fake provider: one helper
settles earlier restores and measures the free space, each volume is staged, then all are
swapped in by one helper; a failure before the swap aborts what was staged and removes a
workspace the restore created. No engine: the helpers are recorded."""

from __future__ import annotations

import json

import pytest
from tests.fakes import FakeProvider

from dev8.backup.progress import TransferProgress
from dev8.core.errors import AlreadyExists, ProviderError
from dev8.core.images import helper_image
from dev8.core.naming import VOLUME_MOUNTS
from dev8.providers.base import HelperJob, HelperResult, MountInfo, VolumeInfo
from dev8.service.restores import Restores, Target
from dev8.service.volume_jobs import VolumeJobs
from dev8.service.workspaces import CreateRequest, WorkspaceService
from dev8.store.store import Store

OWNER = "alice"


class HelperProvider(FakeProvider):
    """The fake provider with helper containers that only record their jobs."""

    def __init__(self) -> None:
        super().__init__()
        self.images[helper_image()] = "sha256:" + "c" * 64
        self.jobs: list[HelperJob] = []
        self.failing: set[str] = set()  # the first argument of jobs that exit 1
        self.free = {role: 1 << 40 for role in VOLUME_MOUNTS}  # what `ready` finds, by role

    def run_helper(self, job: HelperJob, on_stderr=None) -> HelperResult:
        self.jobs.append(job)
        failed = any(word in self.failing for word in job.argv[3:4])
        if failed:
            return HelperResult(1, b"", b"swap refused\n")
        if job.argv[3:4] == ["ready"]:
            found = {path: {"recovered": "nothing to do", "free": self.free[role]}
                     for role, path in VOLUME_MOUNTS.items()}  # fmt: skip
            return HelperResult(0, json.dumps(found).encode(), b"")
        return HelperResult(0, b"", b"")

    def remove_stale_helpers(self, workspace_id: str) -> list[str]:
        return []

    def host_paths_visible(self) -> bool:
        return True

    def container_mounts(self, workspace_id: str) -> list[MountInfo]:
        return []

    def inspect_volume(self, name: str) -> VolumeInfo:
        raise NotImplementedError


class Messages(TransferProgress):
    def __init__(self) -> None:
        self.said: list[str] = []

    def message(self, text: str) -> None:
        self.said.append(text)


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


@pytest.fixture
def provider() -> HelperProvider:
    return HelperProvider()


@pytest.fixture
def service(store: Store, provider: HelperProvider) -> WorkspaceService:
    return WorkspaceService(store=store, provider=provider, owner=OWNER)


@pytest.fixture
def restores(service: WorkspaceService, provider: HelperProvider) -> Restores:
    return Restores(service, VolumeJobs(provider, OWNER, "restore"))


def swaps(provider: HelperProvider) -> list[tuple[str, list[str]]]:
    return [
        (job.argv[3], [m.target for m in job.mounts])
        for job in provider.jobs
        if job.purpose == "swap"
    ]


def test_every_volume_is_staged_then_all_are_swapped_in_at_once(service, provider, restores):
    workspace = service.create(CreateRequest(name="demo", image="dev8/workspace:test"))
    staged: list[tuple[str, str]] = []
    running = restores.run(
        Target(workspace), "restore", ["home", "workspace"],
        lambda role, token: staged.append((role, token)), Messages(),
    )  # fmt: skip
    assert not running
    assert [role for role, _ in staged] == ["home", "workspace"]
    assert len({token for _, token in staged}) == 1
    everything = ["/home/dev8", "/workspace", "/var/lib/dev8"]
    assert swaps(provider) == [("ready", everything), ("install", everything[:2])]
    assert service.history("demo")[0].action == "restore"


def test_a_failed_stage_aborts_and_removes_the_workspace_it_created(service, provider, restores):
    template = service.create(CreateRequest(name="demo", image="dev8/workspace:test"))
    target = restores.new_target("copy", template, Messages())
    assert target.created and not target.adopted

    def stage(role: str, token: str) -> None:
        raise ProviderError("the archive ended early")

    with pytest.raises(ProviderError, match="ended early"):
        restores.run(target, "restore", ["home"], stage, Messages())
    assert swaps(provider)[1:] == [("abort", ["/home/dev8"])]
    assert service.store.find(OWNER, "copy") is None  # purged with its new volumes
    assert service.store.find(OWNER, "demo") is not None


def test_a_failed_abort_is_told_and_the_first_failure_raised(service, provider, restores):
    workspace = service.create(CreateRequest(name="demo", image="dev8/workspace:test"))
    provider.failing.add("abort")
    progress = Messages()

    def stage(role: str, token: str) -> None:
        raise ProviderError("the archive ended early")

    with pytest.raises(ProviderError, match="ended early"):
        restores.run(Target(workspace), "restore", ["home"], stage, progress)
    assert any("dev8 doctor demo --fix" in said for said in progress.said), progress.said
    assert service.store.find(OWNER, "demo") is not None  # not created by the restore


def test_a_failed_install_says_the_previous_data_is_in_place(service, provider, restores):
    workspace = service.create(CreateRequest(name="demo", image="dev8/workspace:test"))
    provider.failing.add("install")
    with pytest.raises(ProviderError, match="swap refused; the previous data is in place"):
        restores.run(Target(workspace), "restore", ["home"], lambda r, t: None, Messages())


def test_targets_a_live_workspace_or_refuses_a_taken_new_name(service, restores):
    service.create(CreateRequest(name="demo", image="dev8/workspace:test"))
    found = restores.live_target("demo", None)
    assert found is not None and found.workspace.name == "demo" and not found.created
    assert restores.live_target("other", None) is None
    with pytest.raises(AlreadyExists, match="restore into it"):
        restores.live_target("other", "demo")


def test_a_removed_workspace_is_adopted_on_its_kept_volumes(service, restores):
    template = service.create(CreateRequest(name="demo", image="dev8/workspace:test"))
    service.remove("demo")
    assert restores.live_target("demo", None) is None
    target = restores.new_target("demo", template, Messages())
    assert target.created and target.adopted
