"""Turning what the backend sees into the observed state users are shown. Pure."""

from __future__ import annotations

from datetime import datetime, timezone

from dev8.core.states import ContainerState, DesiredState, ObservedState
from dev8.providers.base import RuntimeStatus

STARTUP_WINDOW_S = 90.0


def derive_observed(
    desired: DesiredState, runtime: RuntimeStatus, health: str | None, now: datetime | None = None
) -> tuple[ObservedState, str]:
    """The observed state and a one-line message.

    ``health`` is None when the agent reports healthy, else why it is not (including
    "agent not answering").
    """
    now = now or datetime.now(timezone.utc)
    state = runtime.state
    if state is ContainerState.MISSING:
        if desired is DesiredState.REMOVED:
            return ObservedState.REMOVED, "container removed; volumes kept"
        return (
            ObservedState.MISSING,
            "the container is gone; `dev8 start` recreates it on the same volumes",
        )
    if state is ContainerState.RUNNING:
        if health is None:
            return ObservedState.RUNNING, ""
        started = runtime.started_at
        if started is not None and (now - started).total_seconds() < STARTUP_WINDOW_S:
            return ObservedState.STARTING, health
        return ObservedState.UNHEALTHY, health
    if state is ContainerState.RESTARTING:
        return ObservedState.CRASHED, (
            f"exited with code {runtime.exit_code}; the engine is restarting it "
            f"(restarted {runtime.restart_count} times)"
        )
    if state is ContainerState.PAUSED:
        return ObservedState.UNHEALTHY, "the container is paused"
    if state in (ContainerState.EXITED, ContainerState.CREATED):
        if desired is not DesiredState.RUNNING:
            return ObservedState.STOPPED, ""
        if runtime.oom_killed:
            return ObservedState.CRASHED, "killed for using more memory than its limit"
        if runtime.exit_code:
            return ObservedState.CRASHED, f"exited with code {runtime.exit_code}"
        return ObservedState.STOPPED, "stopped outside dev8; `dev8 start` starts it"
    return ObservedState.UNKNOWN, "the backend reports a state dev8 does not know"
