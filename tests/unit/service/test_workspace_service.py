"""``WorkspaceService`` on the fault-injecting ``FakeProvider`` and ``FakeAgent`` (no engine):
every action's success, and an injected failure of each, judged by what the store then
holds (the workspace's observed state and message, the operation's result and error code)
and what the provider is left with. The database is a real SQLite file."""

from __future__ import annotations

import pytest
from tests.fakes import IMAGES, FakeAgent, FakeProvider

from dev8.core.errors import (
    Conflict,
    ImageNotFound,
    NotFound,
    OperationAbandoned,
    OperationTimeout,
    ProviderError,
)
from dev8.core.resources import Resources
from dev8.core.states import ContainerState, DesiredState, ObservedState
from dev8.core.workspace import FAILED, RUNNING, SUCCEEDED, Operation, Workspace
from dev8.service.operations import OperationRunner
from dev8.service.requests import WorkspaceRequests
from dev8.service.workspaces import CreateRequest, WorkspaceService
from dev8.store.store import Store, new_operation

OWNER = "alice"
IMAGE, NEXT = "dev8/workspace:test", "dev8/workspace:next"
TIMEOUT_S = 0.3  # how long a start waits for a health the fake agent withholds


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def agent() -> FakeAgent:
    return FakeAgent()


@pytest.fixture
def service(store: Store, provider: FakeProvider, agent: FakeAgent) -> WorkspaceService:
    return WorkspaceService(
        store=store,
        provider=provider,
        owner=OWNER,
        authorized_keys=lambda: "ssh-ed25519 AAAA alice@test",
        agent=agent,  # type: ignore[arg-type]  # answers health and status like the real one
    )


def created(service: WorkspaceService, name: str = "demo", **fields) -> Workspace:
    return service.create(CreateRequest(name=name, image=IMAGE, **fields))


def running(service: WorkspaceService, name: str = "demo", **fields) -> Workspace:
    created(service, name, **fields)
    return service.start(name, timeout=TIMEOUT_S)


def last_operation(service: WorkspaceService, name: str = "demo") -> Operation:
    return service.history(name)[0]


def events(store: Store, operation: Operation) -> list[str]:
    return [event.message for event in store.events(operation.id)]


def assert_failed(service: WorkspaceService, action: str, code: str, reason: str) -> None:
    """The workspace shows the failure with its reason; its last operation failed with the
    error's code."""
    workspace = service.store.find(OWNER, "demo")
    assert workspace is not None
    assert workspace.observed_state is ObservedState.FAILED
    assert workspace.status_message.startswith(f"{action} failed: ") and reason in (
        workspace.status_message
    )
    operation = last_operation(service)
    assert (operation.action, operation.result) == (action, FAILED)
    assert operation.outcome["error"] == code and reason in operation.message


def run_queued(service: WorkspaceService, workspace_id: str) -> list[Operation]:
    """Run the workspace's queued operations as the server's reconciler does."""
    runner = OperationRunner(service.store, lambda _operation: service)
    finished = []
    while (operation := runner.run_next(workspace_id)) is not None:
        finished.append(operation)
    return finished


def left_running(service: WorkspaceService, workspace: Workspace, action: str, attempts: int):
    """What a server killed in the middle of ``action`` leaves: an operation marked running
    after ``attempts`` attempts, whose lock nobody holds."""
    operation = new_operation(workspace, action, OWNER)
    operation.result, operation.attempts = RUNNING, attempts
    service.store.queue(workspace, [operation])
    return operation


# Create ---------------------------------------------------------------------------------
def test_create_makes_a_stopped_container_on_new_volumes(service, provider):
    workspace = created(service)
    stored = service.store.find(OWNER, "demo")
    assert stored is not None and stored.id == workspace.id
    assert (stored.desired_state, stored.observed_state) == (
        DesiredState.STOPPED,
        ObservedState.STOPPED,
    )
    assert stored.image_id == IMAGES[IMAGE] and stored.host_ports
    assert provider.objects() == ({workspace.id}, {workspace.id})
    assert provider.containers[workspace.id].state is ContainerState.CREATED
    spec = provider.containers[workspace.id].spec
    assert spec.env["SSH_PUBLIC_KEY"].startswith("ssh-ed25519")
    operation = last_operation(service)
    assert (operation.action, operation.result, operation.actor) == ("create", SUCCEEDED, OWNER)
    assert events(service.store, operation)[0] == "creating volumes and container"


@pytest.mark.parametrize("inject", ["fail", "lose_answer"])
def test_a_failed_create_leaves_nothing_behind(service, provider, inject):
    getattr(provider, inject)("create")  # refused, or done and then its answer lost
    with pytest.raises(ProviderError, match="injected"):
        created(service)
    assert service.store.find(OWNER, "demo") is None
    assert service.store.list(OWNER, include_removed=True) == []
    assert provider.objects() == (set(), set())


def test_a_create_from_a_missing_image_asks_nothing_more(service, provider):
    with pytest.raises(ImageNotFound):
        service.create(CreateRequest(name="demo", image="no/such:image"))
    assert service.store.find(OWNER, "demo") is None
    assert [method for method, _ in provider.calls] == ["image_id"]


def test_a_queued_create_that_fails_keeps_the_record_failed_and_nothing_else(service, provider):
    provider.lose_answer("create", ProviderError("injected: no space left on device"))
    accepted = WorkspaceRequests(service).create(CreateRequest(name="demo", image=IMAGE))
    [create] = run_queued(service, accepted.workspace.id)
    assert (create.result, create.outcome["error"]) == (FAILED, "provider_error")
    start = service.store.get_operation(accepted.operations[1].id)
    assert start.result == FAILED and start.message.startswith("not run: the create failed")
    workspace = service.store.get(accepted.workspace.id)
    assert workspace.observed_state is ObservedState.FAILED
    assert workspace.status_message == "create failed: injected: no space left on device"
    assert provider.objects() == (set(), set())


# Start, stop, restart ---------------------------------------------------------------------
def test_start_runs_the_container_and_waits_for_health(service, provider):
    workspace = running(service)
    stored = service.store.get(workspace.id)
    assert (stored.desired_state, stored.observed_state) == (
        DesiredState.RUNNING,
        ObservedState.RUNNING,
    )
    assert stored.ports["ssh"] > 0 and stored.agent_url is not None
    assert provider.containers[workspace.id].state is ContainerState.RUNNING
    assert [op.action for op in service.history("demo")] == ["start", "create"]
    assert last_operation(service).result == SUCCEEDED


def test_each_start_hands_the_agent_the_owners_keys_as_they_are_now(store, provider, agent):
    """The container's copy of the keys dates from its creation; a key added on the account
    page since must work at the next start (and one removed must stop working)."""
    keys = ["ssh-ed25519 AAAA alice@laptop"]
    service = WorkspaceService(
        store=store,
        provider=provider,
        owner=OWNER,
        authorized_keys=lambda: "\n".join(keys),
        agent=agent,  # type: ignore[arg-type]
    )
    workspace = running(service)
    assert agent.ssh_keys[workspace.agent_url] == "ssh-ed25519 AAAA alice@laptop"
    service.stop("demo")
    keys[:] = ["ssh-ed25519 BBBB alice@desktop"]
    workspace = service.start("demo", timeout=TIMEOUT_S)
    assert agent.ssh_keys[workspace.agent_url] == "ssh-ed25519 BBBB alice@desktop"


def test_a_service_that_manages_no_keys_hands_none(store, provider, agent):
    service = WorkspaceService(store=store, provider=provider, owner=OWNER, agent=agent)  # type: ignore[arg-type]
    running(service)
    assert agent.ssh_keys == {}


def test_a_refused_start_is_a_failed_status_with_its_reason(service, provider):
    created(service)
    provider.fail("start", ProviderError("injected: cannot start"))
    with pytest.raises(ProviderError):
        service.start("demo", timeout=TIMEOUT_S)
    assert_failed(service, "start", "provider_error", "injected: cannot start")
    assert service.store.find(OWNER, "demo").desired_state is DesiredState.RUNNING


def test_a_start_that_never_gets_healthy_times_out(service, agent):
    created(service)
    agent.health_reason = "sshd is not listening"
    with pytest.raises(OperationTimeout, match="sshd is not listening"):
        service.start("demo", timeout=TIMEOUT_S)
    assert_failed(service, "start", "timeout", "not healthy after")


def test_a_slow_engine_is_waited_for_and_the_time_recorded(service, provider):
    created(service)
    provider.delay("start", 0.2)
    service.start("demo", timeout=TIMEOUT_S)
    operation = last_operation(service)
    assert operation.result == SUCCEEDED and operation.duration_s >= 0.2


def test_start_recreates_a_vanished_container_on_the_same_volumes(service, provider):
    workspace = created(service)
    provider.vanish(workspace.id)
    service.start("demo", timeout=TIMEOUT_S)
    assert provider.objects() == ({workspace.id}, {workspace.id})
    assert provider.containers[workspace.id].state is ContainerState.RUNNING
    assert "the container is missing; recreating it on the same volumes" in events(
        service.store, last_operation(service)
    )


def test_start_moves_to_new_ports_when_one_was_taken(service, provider):
    workspace = created(service)
    before = dict(service.store.get(workspace.id).host_ports)
    provider.fail("start", Conflict("injected: port 40002 is already allocated"), times=1)
    service.start("demo", timeout=TIMEOUT_S)
    after = service.store.get(workspace.id)
    assert after.observed_state is ObservedState.RUNNING
    assert after.host_ports and not set(after.host_ports.values()) & set(before.values())
    assert after.ports == after.host_ports
    assert "a host port was taken by another program; moving to new ports" in events(
        service.store, last_operation(service)
    )


def test_ports_the_user_fixed_are_never_moved(service, provider):
    created(service, host_ports={"ssh": 2222})
    provider.fail("start", Conflict("injected: port 2222 is already allocated"), times=1)
    with pytest.raises(Conflict):
        service.start("demo", timeout=TIMEOUT_S)
    assert_failed(service, "start", "conflict", "port 2222 is already allocated")
    assert service.store.find(OWNER, "demo").host_ports["ssh"] == 2222


def test_stop(service, provider):
    workspace = running(service)
    service.stop("demo")
    stored = service.store.get(workspace.id)
    assert (stored.desired_state, stored.observed_state) == (
        DesiredState.STOPPED,
        ObservedState.STOPPED,
    )
    assert stored.ports == {} and stored.agent_url is None
    assert provider.containers[workspace.id].state is ContainerState.EXITED


def test_a_failed_stop(service, provider):
    running(service)
    provider.fail("stop", ProviderError("injected: the engine is busy"))
    with pytest.raises(ProviderError):
        service.stop("demo")
    assert_failed(service, "stop", "provider_error", "the engine is busy")


def test_restart_of_a_running_and_of_a_stopped_workspace(service, provider):
    workspace = running(service)
    service.restart("demo", timeout=TIMEOUT_S)
    assert ("restart", workspace.id) in provider.calls
    service.stop("demo")
    service.restart("demo", timeout=TIMEOUT_S)  # stopped: simply started
    assert service.store.get(workspace.id).observed_state is ObservedState.RUNNING
    assert [op.action for op in service.history("demo")[:3]] == ["restart", "stop", "restart"]


def test_a_failed_restart(service, provider):
    running(service)
    provider.fail("restart")
    with pytest.raises(ProviderError):
        service.restart("demo", timeout=TIMEOUT_S)
    assert_failed(service, "restart", "provider_error", "injected: restart refused")


# Rebuild and update -----------------------------------------------------------------------
def test_rebuild_makes_a_new_container_from_the_new_image_on_the_same_volumes(service, provider):
    workspace = running(service)
    service.rebuild("demo", NEXT, timeout=TIMEOUT_S)
    stored = service.store.get(workspace.id)
    assert (stored.image_ref, stored.image_id) == (NEXT, IMAGES[NEXT])
    assert provider.containers[workspace.id].spec.image == IMAGES[NEXT]
    assert stored.observed_state is ObservedState.RUNNING
    assert provider.objects() == ({workspace.id}, {workspace.id})
    messages = events(service.store, last_operation(service))
    assert messages[0] == "recording installed system packages"  # the old one ran
    assert "removing the old container (volumes stay)" in messages


def test_a_rebuild_onto_a_missing_image_changes_nothing(service, provider):
    workspace = running(service)
    with pytest.raises(ImageNotFound):
        service.rebuild("demo", "no/such:image")
    assert service.store.get(workspace.id).observed_state is ObservedState.RUNNING
    assert last_operation(service).action == "start"


def test_a_rebuild_that_fails_after_removing_the_old_container(service, provider):
    workspace = running(service)
    provider.fail("create", ProviderError("injected: no space left on device"))
    with pytest.raises(ProviderError):
        service.rebuild("demo", NEXT, timeout=TIMEOUT_S)
    assert_failed(service, "rebuild", "provider_error", "no space left on device")
    assert provider.objects() == (set(), {workspace.id})  # the volumes stay


def test_an_update_through_the_queue_applies_new_resources(service, provider):
    workspace = running(service)
    accepted = WorkspaceRequests(service).update("demo", resources=Resources(3, 3072))
    [operation] = run_queued(service, workspace.id)
    assert (operation.action, operation.result) == ("update", SUCCEEDED)
    assert operation.message == "applied new resources"
    assert accepted.operations[0].id == operation.id
    assert provider.containers[workspace.id].spec.resources == Resources(3, 3072)
    assert service.store.get(workspace.id).observed_state is ObservedState.RUNNING


def test_a_failed_update_through_the_queue(service, provider):
    workspace = running(service)
    WorkspaceRequests(service).update("demo", resources=Resources(3, 3072))
    provider.fail("create")
    [operation] = run_queued(service, workspace.id)
    assert (operation.result, operation.outcome["error"]) == (FAILED, "provider_error")
    assert_failed(service, "update", "provider_error", "injected: create refused")


# Remove and purge -------------------------------------------------------------------------
def test_remove_keeps_the_volumes_and_the_record(service, provider):
    workspace = running(service)
    assert service.remove("demo") == []
    assert provider.objects() == (set(), {workspace.id})
    with pytest.raises(NotFound):
        service.find("demo")
    kept = service.find_known("demo")
    assert (kept.desired_state, kept.observed_state) == (
        DesiredState.REMOVED,
        ObservedState.REMOVED,
    )
    assert last_operation(service).action == "remove"


def test_a_failed_remove(service, provider):
    workspace = running(service)
    provider.fail("remove")
    with pytest.raises(ProviderError):
        service.remove("demo")
    assert_failed(service, "remove", "provider_error", "injected: remove refused")
    assert provider.objects() == ({workspace.id}, {workspace.id})


def test_purge_destroys_everything(service, provider):
    workspace = running(service)
    destroyed = service.remove("demo", purge=True)
    assert len(destroyed) == 3 and all(workspace.id in name for name in destroyed)
    assert provider.objects() == (set(), set())
    assert service.store.list(OWNER, include_removed=True) == []


def test_a_failed_purge_keeps_the_record_of_what_is_left(service, provider):
    workspace = running(service)
    provider.fail("remove_volumes")
    with pytest.raises(ProviderError):
        service.remove("demo", purge=True)
    assert_failed(service, "purge", "provider_error", "injected: remove_volumes refused")
    assert provider.objects() == (set(), {workspace.id})


# Up ---------------------------------------------------------------------------------------
def test_up_creates_starts_and_waits(service, provider):
    workspace = service.up(CreateRequest(name="demo", image=IMAGE), timeout=TIMEOUT_S)
    assert workspace.observed_state is ObservedState.RUNNING
    assert [op.action for op in service.history("demo")] == ["start", "create"]
    service.stop("demo")
    service.up(CreateRequest(name="demo", image=IMAGE), timeout=TIMEOUT_S)  # starts it again
    assert [op.action for op in service.history("demo")][:2] == ["start", "stop"]


def test_an_up_that_never_gets_healthy_leaves_nothing_behind(service, provider, agent):
    agent.health_reason = "code-server is not answering"
    with pytest.raises(OperationTimeout):
        service.up(CreateRequest(name="demo", image=IMAGE), timeout=TIMEOUT_S)
    assert service.store.list(OWNER, include_removed=True) == []
    assert provider.objects() == (set(), set())


def test_an_up_of_an_existing_workspace_that_fails_keeps_it(service, provider):
    workspace = created(service)
    provider.fail("start")
    with pytest.raises(ProviderError):
        service.up(CreateRequest(name="demo", image=IMAGE), timeout=TIMEOUT_S)
    assert_failed(service, "start", "provider_error", "injected: start refused")
    assert provider.objects() == ({workspace.id}, {workspace.id})


# Queued operations: resumed after a crash, abandoned after too many -------------------------
def test_an_interrupted_operation_is_resumed(service, provider):
    workspace = running(service)
    left_running(service, workspace, "restart", attempts=1)
    [operation] = run_queued(service, workspace.id)
    assert (operation.result, operation.attempts) == (SUCCEEDED, 2)
    assert events(service.store, operation)[0] == "resuming after an interruption (attempt 2)"
    assert service.store.get(workspace.id).observed_state is ObservedState.RUNNING


def test_an_operation_interrupted_too_often_is_abandoned(service, provider):
    workspace = running(service)
    left_running(service, workspace, "rebuild", attempts=3)
    [operation] = run_queued(service, workspace.id)
    assert (operation.result, operation.attempts) == (FAILED, 4)
    assert operation.outcome["error"] == OperationAbandoned.code == "operation_abandoned"
    assert operation.message.startswith("interrupted 3 times")
    assert_failed(service, "rebuild", "operation_abandoned", "interrupted 3 times")
    assert ("remove", workspace.id) not in provider.calls  # nothing was tried again
