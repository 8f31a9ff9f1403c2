"""Recording what happens to a workspace: each change as an operation (who, what, when,
result, its progress as events) under the workspace's lock, and each change of its
observed state through one function that also records it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from dev8.core.errors import Dev8Error
from dev8.core.states import ObservedState
from dev8.core.workspace import FAILED, SUCCEEDED, Operation, Workspace
from dev8.providers.base import RuntimeStatus
from dev8.service.workspaces.base import Progress, ServiceBase, quiet

log = logging.getLogger("dev8.workspaces")


class Recording(ServiceBase):
    def set_status(
        self,
        workspace: Workspace,
        state: ObservedState,
        message: str = "",
        runtime: RuntimeStatus | None = None,
    ) -> Workspace:
        """The one way a workspace's observed state changes: applies ``state`` and what
        ``runtime`` says (ports, container, agent address), saves what changed, and records
        a change of state as an event of the operation under way (and in the log)."""
        before = (workspace.observed_state, workspace.status_message, workspace.ports)
        previous_state = workspace.observed_state
        workspace.observed_state, workspace.status_message = state, message
        changed = before != (state, message, workspace.ports)
        if runtime is not None:
            changed = _apply_runtime(workspace, runtime) or changed
        if changed:
            workspace = self.store.save_status(workspace)
        if previous_state is not state:
            self._state_event(workspace, previous_state, state, message)
        return workspace

    def _state_event(
        self, workspace: Workspace, before: ObservedState, after: ObservedState, message: str
    ) -> None:
        text = f"{before.value} -> {after.value}" + (f": {message}" if message else "")
        log.info("workspace %s/%s: %s", workspace.owner, workspace.name, text)
        running = self._running
        if running is not None and running.workspace_id == workspace.id:
            self.store.add_event(running.id, f"state {text}")

    @contextlib.contextmanager
    def _operation(
        self, workspace: Workspace, action: str, progress: Progress = quiet
    ) -> Iterator[Progress]:
        """Run the block as the operation ``action``, now, under the workspace's lock,
        first recording the desired state the action table gives it (as a queued request
        records it when queued)."""
        from dev8.service.workspaces.actions import LIFECYCLE_ACTIONS  # it imports this

        spec = LIFECYCLE_ACTIONS.get(action)
        with self.store.lock(workspace.id):
            operation = self.store.start_operation(workspace, action, self.actor)
            with self.recorded(operation, progress) as report:
                if spec is not None and spec.target is not None:
                    self.store.set_desired(workspace, spec.target)
                yield report

    @contextlib.contextmanager
    def recorded(self, operation: Operation, progress: Progress = quiet) -> Iterator[Progress]:
        """Finish ``operation`` with the outcome of the block, which gets a progress callback
        that also records each message as an event. A failure marks the workspace failed
        with the reason, and is raised again. The caller holds the workspace's lock."""

        def report(message: str) -> None:
            self.store.add_event(operation.id, message)
            progress(message)

        outer, self._running = self._running, operation
        try:
            yield report
        except BaseException as exc:
            self._running = outer
            message = _failure_message(exc)
            code = exc.code if isinstance(exc, Dev8Error) else Dev8Error.code
            outcome = {**operation.outcome, "error": code}
            self.store.finish_operation(operation.id, FAILED, message, outcome)
            self._mark_failed(operation, message)
            raise
        finally:
            self._running = outer
        self.store.finish_operation(operation.id, SUCCEEDED, operation.message, operation.outcome)

    def _mark_failed(self, operation: Operation, message: str) -> None:
        with contextlib.suppress(Dev8Error):
            current = self.store.get(operation.workspace_id or "")
            self.set_status(current, ObservedState.FAILED, f"{operation.action} failed: {message}")

    def operation(self, workspace: Workspace, action: str) -> contextlib.AbstractContextManager:
        """Lock ``workspace`` and record ``action`` in its history while the block runs;
        within an operation already under way for it (a queued one the server runs), that
        one records it."""
        running = self._running
        if running is not None and running.workspace_id == workspace.id:
            return contextlib.nullcontext()
        return self._operation(workspace, action)


def _failure_message(exc: BaseException) -> str:
    if isinstance(exc, Dev8Error):
        return exc.message
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else repr(exc)


def _apply_runtime(workspace: Workspace, runtime: RuntimeStatus) -> bool:
    """Copy what the backend says into ``workspace``; True if anything changed."""
    ports = runtime.ports if runtime.running else {}
    now = (ports, runtime.container_id, runtime.agent_url)
    changed = (workspace.ports, workspace.container_id, workspace.agent_url) != now
    workspace.ports, workspace.container_id, workspace.agent_url = now
    if runtime.host_ports and runtime.host_ports != workspace.host_ports:
        workspace.host_ports, changed = dict(runtime.host_ports), True
    return changed
