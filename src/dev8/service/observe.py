"""Turning what the backend sees into the observed state users are shown. Pure."""

from __future__ import annotations

from datetime import datetime, timezone

from dev8.core.states import DesiredState, ObservedState
from dev8.providers.base import RuntimeStatus

STARTUP_WINDOW_S = 90.0


def _seconds_since(timestamp: str | None, now: datetime) -> float | None:
    if not timestamp or timestamp.startswith("0001-"):
        return None
    try:
        # Docker gives nanoseconds; fromisoformat takes at most microseconds.
        head, _, rest = timestamp.rstrip("Z").partition(".")
        started = datetime.fromisoformat(head + ("." + rest[:6] if rest else "")).replace(
            tzinfo=timezone.utc
        )
    except ValueError:
        return None
    return (now - started).total_seconds()


def derive_observed(
    desired: DesiredState, runtime: RuntimeStatus, health: str | None, now: datetime | None = None
) -> tuple[ObservedState, str]:
    """The observed state and a one-line message.

    ``health`` is None when the agent reports healthy, else why it is not (including
    "agent not answering").
    """
    now = now or datetime.now(timezone.utc)
    state = runtime.state
    if state == "missing":
        if desired is DesiredState.REMOVED:
            return ObservedState.REMOVED, "container removed; volumes kept"
        return (
            ObservedState.MISSING,
            "the container is gone; `dev8 start` recreates it on the same volumes",
        )
    if state == "running":
        if health is None:
            return ObservedState.RUNNING, ""
        age = _seconds_since(runtime.started_at, now)
        if age is not None and age < STARTUP_WINDOW_S:
            return ObservedState.STARTING, health
        return ObservedState.UNHEALTHY, health
    if state == "restarting":
        return ObservedState.CRASHED, (
            f"exited with code {runtime.exit_code}; the engine is restarting it "
            f"(restarted {runtime.restart_count} times)"
        )
    if state == "paused":
        return ObservedState.UNHEALTHY, "the container is paused"
    if state in ("exited", "created", "dead"):
        if desired is not DesiredState.RUNNING:
            return ObservedState.STOPPED, ""
        if runtime.oom_killed:
            return ObservedState.CRASHED, "killed for using more memory than its limit"
        if runtime.exit_code:
            return ObservedState.CRASHED, f"exited with code {runtime.exit_code}"
        return ObservedState.STOPPED, "stopped outside dev8; `dev8 start` starts it"
    return ObservedState.UNKNOWN, f"the engine reports state {state!r}"
