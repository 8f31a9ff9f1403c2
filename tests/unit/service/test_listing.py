"""``WorkspaceService.list`` (what `dev8 ls` shows) on the fault-injecting ``FakeProvider``
and ``FakeAgent`` (no engine): one listing of the engine serves every workspace it settles,
and a container is asked about on its own only when the listing cannot say enough."""

from __future__ import annotations

import pytest
from tests.fakes import FakeAgent, FakeProvider

from dev8.core.states import ContainerState, ObservedState
from dev8.service.workspaces import CreateRequest, WorkspaceService
from dev8.store.store import Store

IMAGE = "dev8/workspace:test"


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def service(sqlite_store: Store, provider: FakeProvider) -> WorkspaceService:
    agent = FakeAgent()  # healthy
    return WorkspaceService(store=sqlite_store, provider=provider, owner="alice", agent=agent)  # type: ignore[arg-type]


def asked_one_by_one(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The workspace ids ``provider.status`` is asked about outside its bulk ``statuses``."""
    asked: list[str] = []
    single = provider.status

    def status(workspace_id: str):
        asked.append(workspace_id)
        return single(workspace_id)

    monkeypatch.setattr(provider, "statuses", lambda: {i: single(i) for i in provider.containers})
    monkeypatch.setattr(provider, "status", status)
    return asked


def test_stopped_and_running_workspaces_are_settled_by_one_listing(
    service: WorkspaceService, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
):
    for name in ("a", "b", "c"):
        service.create(CreateRequest(name=name, image=IMAGE))
    service.start("a")
    asked = asked_one_by_one(provider, monkeypatch)

    states = {ws.name: ws.observed_state for ws in service.list()}

    assert states == {
        "a": ObservedState.RUNNING,
        "b": ObservedState.STOPPED,
        "c": ObservedState.STOPPED,
    }
    assert asked == []


def test_a_workspace_stopped_outside_dev8_is_inspected_for_its_exit(
    service: WorkspaceService, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
):
    workspace = service.start(service.create(CreateRequest(name="a", image=IMAGE)).name)
    provider.containers[workspace.id].state = ContainerState.EXITED  # exited on its own
    asked = asked_one_by_one(provider, monkeypatch)

    [listed] = service.list()

    assert asked == [workspace.id]
    assert listed.observed_state is ObservedState.STOPPED
    assert "outside dev8" in listed.status_message
