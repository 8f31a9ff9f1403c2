from datetime import datetime, timedelta, timezone

from dev8.core.states import ContainerState as C
from dev8.core.states import DesiredState, ObservedState
from dev8.providers.base import RuntimeStatus
from dev8.service.workspaces import derive_observed

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def started(seconds_ago: float) -> datetime:
    return NOW - timedelta(seconds=seconds_ago)


def observe(desired, **runtime):
    health = runtime.pop("health", None)
    return derive_observed(desired, RuntimeStatus(**runtime), health, NOW)


def test_running_and_healthy():
    assert observe(DesiredState.RUNNING, state=C.RUNNING)[0] is ObservedState.RUNNING


def test_unhealthy_is_starting_only_shortly_after_start():
    early = observe(
        DesiredState.RUNNING, state=C.RUNNING, started_at=started(5), health="code-server: down"
    )
    late = observe(
        DesiredState.RUNNING, state=C.RUNNING, started_at=started(600), health="code-server: down"
    )
    assert early == (ObservedState.STARTING, "code-server: down")
    assert late == (ObservedState.UNHEALTHY, "code-server: down")


def test_vanished_container_is_missing_unless_removed():
    assert observe(DesiredState.RUNNING, state=C.MISSING)[0] is ObservedState.MISSING
    assert observe(DesiredState.REMOVED, state=C.MISSING)[0] is ObservedState.REMOVED


def test_exits_are_crashes_only_when_it_should_run():
    assert observe(DesiredState.STOPPED, state=C.EXITED, exit_code=137)[0] is ObservedState.STOPPED
    state, message = observe(DesiredState.RUNNING, state=C.EXITED, exit_code=137)
    assert state is ObservedState.CRASHED and "137" in message
    state, message = observe(DesiredState.RUNNING, state=C.EXITED, exit_code=137, oom_killed=True)
    assert "memory" in message
    assert observe(DesiredState.RUNNING, state=C.EXITED, exit_code=0)[0] is ObservedState.STOPPED


def test_restarting_is_a_crash_loop():
    state, message = observe(DesiredState.RUNNING, state=C.RESTARTING, exit_code=1, restart_count=4)
    assert state is ObservedState.CRASHED and "4" in message
