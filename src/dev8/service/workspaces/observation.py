"""Observing workspaces: what the backend and the agent say, turned into the observed state
users are shown, and waiting until a workspace is healthy."""

from __future__ import annotations

import builtins
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from dev8.core.clock import utcnow
from dev8.core.environment import AGENT_TOKEN
from dev8.core.errors import (
    Conflict,
    EngineUnavailable,
    OperationTimeout,
    ProviderError,
    WorkspaceCrashed,
)
from dev8.core.states import LIVE, ContainerState, DesiredState, ObservedState
from dev8.core.workspace import Workspace
from dev8.providers.base import BulkStatus, RuntimeStatus
from dev8.service.workspaces.base import HEALTHY_TIMEOUT_S, Progress, quiet
from dev8.service.workspaces.recording import Recording, log

STARTUP_WINDOW_S = 90.0
ENGINE_CHECK_S = 1.0  # asking the engine costs more than asking the agent
AGENT_QUERIES = 8  # agents asked at once when listing
_STOPPED = (ContainerState.EXITED, ContainerState.CREATED)


@dataclass
class Observation:
    workspace: Workspace
    runtime: RuntimeStatus
    activity: datetime | None = None  # when the agent last saw someone, if it runs


class Observing(Recording):
    def get(self, name: str) -> Workspace:
        return self.observe(self.find(name))

    def list(self) -> builtins.list[Workspace]:
        """The owner's live workspaces as they are now: one engine call for all of them
        where the backend can, and their agents asked in parallel."""
        workspaces = self.store.list(self.owner)
        if not workspaces:
            return []
        try:
            known = self._bulk_statuses()
        except EngineUnavailable as exc:
            return [self._unknown(workspace, exc) for workspace in workspaces]
        runtimes = [
            known.get(w.id, RuntimeStatus(ContainerState.MISSING)) if known is not None else None
            for w in workspaces
        ]
        with ThreadPoolExecutor(AGENT_QUERIES) as pool:
            healths = list(pool.map(self._health, runtimes))
        return [
            self._observed(workspace, runtime, health)
            for workspace, runtime, health in zip(workspaces, runtimes, healths, strict=True)
        ]

    def _bulk_statuses(self) -> dict[str, RuntimeStatus] | None:
        return self.provider.statuses() if isinstance(self.provider, BulkStatus) else None

    def _health(self, runtime: RuntimeStatus | None) -> str | None:
        return self.agent.health(runtime.agent_url) if runtime and runtime.running else None

    def _observed(
        self, workspace: Workspace, listed: RuntimeStatus | None, health: str | None
    ) -> Workspace:
        """A listed status is enough for a healthy or missing container, and for a stopped
        one that should not run (its exit code does not matter then); otherwise the details
        (exit code, start time) are asked for."""
        settled = listed is not None and (
            (listed.running and health is None)
            or listed.state is ContainerState.MISSING
            or (listed.state in _STOPPED and workspace.desired_state is not DesiredState.RUNNING)
        )
        if not settled:
            return self.observe(workspace)
        assert listed is not None
        state, message = derive_observed(workspace.desired_state, listed, health)
        return self.set_status(workspace, state, message, listed)

    def history(self, name: str, limit: int = 50) -> builtins.list:
        return self.store.operations(self.find_known(name).id, limit)

    def observe(self, workspace: Workspace) -> Workspace:
        """Ask the engine and the agent, record what they say, return the result."""
        try:
            runtime = self.provider.status(workspace.id)
        except EngineUnavailable as exc:
            return self._unknown(workspace, exc)
        health = self.agent.health(runtime.agent_url) if runtime.running else None
        state, message = derive_observed(workspace.desired_state, runtime, health)
        return self.set_status(workspace, state, message, runtime)

    def _unknown(self, workspace: Workspace, exc: EngineUnavailable) -> Workspace:
        """Shown, never stored: an engine that cannot be asked says nothing of the
        workspace, and what was recorded stays for when it answers again."""
        workspace.observed_state, workspace.status_message = ObservedState.UNKNOWN, exc.message
        return workspace

    def observe_activity(
        self, workspace: Workspace, runtime: RuntimeStatus | None = None, keep_failure: bool = True
    ) -> Observation:
        """Like ``observe`` (``runtime`` if the caller already knows it), and for a running
        workspace also when its agent last saw someone (SSH, IDE, code-server's heartbeat).
        A recorded failure stays shown until the workspace runs healthy again
        (``keep_failure``), so that its reason is not lost."""
        try:
            runtime = runtime or self.provider.status(workspace.id)
        except EngineUnavailable as exc:
            return Observation(self._unknown(workspace, exc), RuntimeStatus(ContainerState.UNKNOWN))
        health, activity = None, None
        if runtime.running:
            try:
                status = self.agent.status(runtime.agent_url, workspace.secrets[AGENT_TOKEN])
                health, activity = status.get("health"), last_activity(status)
            except ProviderError as exc:
                health = exc.message  # only this workspace is marked: its answer is its own
            except KeyError:
                health = "the agent is not answering"
        state, message = derive_observed(workspace.desired_state, runtime, health)
        failed = keep_failure and workspace.observed_state is ObservedState.FAILED
        if failed and state is not ObservedState.RUNNING:
            state, message = ObservedState.FAILED, workspace.status_message
        return Observation(self.set_status(workspace, state, message, runtime), runtime, activity)

    def hand_ssh_keys(self, workspace: Workspace, agent_url: str | None = None) -> None:
        """Give the running workspace's agent its owner's keys as they are now: the
        container's own copy dates from its creation, and keys added or removed since (on
        the account page, by `dev8 config-ssh`) must count at once. Best effort: a
        workspace that does not answer gets them at its next start."""
        if self.authorized_keys is None:
            return
        try:
            self.agent.put_ssh_keys(
                agent_url or workspace.agent_url,
                workspace.secrets[AGENT_TOKEN],
                self.authorized_keys(),
            )
        except ProviderError as exc:
            log.warning("workspace %s: its SSH keys were not updated: %s", workspace.name, exc)

    def wait_until_healthy(
        self, workspace: Workspace, progress: Progress = quiet, timeout: float = HEALTHY_TIMEOUT_S
    ) -> Workspace:
        """Poll the agent until it reports healthy; fail fast if the container exits."""
        deadline = time.monotonic() + timeout
        last_reason, agent_url = "", workspace.agent_url
        next_engine_check = time.monotonic() + ENGINE_CHECK_S
        restarts_at_start: int | None = None
        while time.monotonic() < deadline:
            reason = self.agent.health(agent_url)
            if reason is None:
                runtime = self.provider.status(workspace.id)
                self.hand_ssh_keys(workspace, runtime.agent_url or agent_url)
                return self.set_status(workspace, ObservedState.RUNNING, "", runtime)
            if reason != last_reason:
                progress(f"waiting for the workspace: {reason}")
                last_reason = reason
            if time.monotonic() >= next_engine_check:
                next_engine_check = time.monotonic() + ENGINE_CHECK_S
                runtime = self.provider.status(workspace.id)
                if restarts_at_start is None:
                    restarts_at_start = runtime.restart_count
                _fail_if_crashed(workspace, runtime, reason, restarts_at_start)
                agent_url = runtime.agent_url or agent_url
            time.sleep(0.05)
        raise OperationTimeout(
            f"workspace {workspace.name} was not healthy after {timeout:.0f} s "
            f"({last_reason}); see `dev8 logs {workspace.name}`"
        )


def _fail_if_crashed(
    workspace: Workspace, runtime: RuntimeStatus, reason: str, restarts_at_start: int
) -> None:
    name = workspace.name
    if runtime.restart_count > restarts_at_start + 1:
        raise WorkspaceCrashed(
            f"workspace {name} keeps crashing while starting (exit code "
            f"{runtime.exit_code}); see `dev8 logs {name}`"
        )
    if runtime.state not in (ContainerState.RUNNING, ContainerState.RESTARTING):
        _, message = derive_observed(workspace.desired_state, runtime, reason)
        raise WorkspaceCrashed(
            f"workspace {name} stopped while starting: {message or runtime.state.value}; "
            f"see `dev8 logs {name}`"
        )


def derive_observed(
    desired: DesiredState, runtime: RuntimeStatus, health: str | None, now: datetime | None = None
) -> tuple[ObservedState, str]:
    """The observed state and a one-line message. Pure.

    ``health`` is None when the agent reports healthy, else why it is not (including
    "agent not answering").
    """
    state = runtime.state
    if state is ContainerState.MISSING:
        if desired is DesiredState.REMOVED:
            return ObservedState.REMOVED, "container removed; volumes kept"
        return (
            ObservedState.MISSING,
            "the container is gone; `dev8 start` recreates it on the same volumes",
        )
    if state is ContainerState.RUNNING:
        return _running_state(runtime, health, now or datetime.now(timezone.utc))
    if state is ContainerState.RESTARTING:
        return ObservedState.CRASHED, (
            f"exited with code {runtime.exit_code}; the engine is restarting it "
            f"(restarted {runtime.restart_count} times)"
        )
    if state is ContainerState.PAUSED:
        return ObservedState.UNHEALTHY, "the container is paused"
    if state in _STOPPED:
        return _stopped_state(desired, runtime)
    return ObservedState.UNKNOWN, "the backend reports a state dev8 does not know"


def _running_state(
    runtime: RuntimeStatus, health: str | None, now: datetime
) -> tuple[ObservedState, str]:
    if health is None:
        return ObservedState.RUNNING, ""
    started = runtime.started_at
    if started is not None and (now - started).total_seconds() < STARTUP_WINDOW_S:
        return ObservedState.STARTING, health
    return ObservedState.UNHEALTHY, health


def _stopped_state(desired: DesiredState, runtime: RuntimeStatus) -> tuple[ObservedState, str]:
    if desired is not DesiredState.RUNNING:
        return ObservedState.STOPPED, ""
    if runtime.oom_killed:
        return ObservedState.CRASHED, "killed for using more memory than its limit"
    if runtime.exit_code:
        return ObservedState.CRASHED, f"exited with code {runtime.exit_code}"
    return ObservedState.STOPPED, "stopped outside dev8; `dev8 start` starts it"


def require_live(workspace: Workspace) -> None:
    """``Conflict`` unless the workspace's container is up."""
    if workspace.observed_state not in LIVE:
        raise Conflict(
            f"workspace {workspace.name} is {workspace.observed_state.value}; "
            f"start it with `dev8 start {workspace.name}`"
        )


def last_activity(agent_status: dict) -> datetime | None:
    """When the agent last saw someone, from its checked ``/status`` (a time between 1970
    and 2100: ``dev8.core.agent_status``); never later than now (the container's clock is
    the host's, but a reply is not trusted to move time forward)."""
    seen = (agent_status.get("activity") or {}).get("last_activity_at")
    if seen is None:
        return None
    return min(datetime.fromtimestamp(seen, timezone.utc), utcnow())
