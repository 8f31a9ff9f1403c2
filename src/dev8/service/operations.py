"""Running queued operations: what the server's reconciler does for each workspace.

An operation is run by whoever holds the workspace's lock (``Store.lock``), which the
operating system or the database releases when its holder dies, even by ``kill -9``. So an
operation found ``running`` while its workspace's lock is free was left behind by a process
that died: it is run again, which is safe because every action is idempotent, until
``max_attempts``; then it is marked failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dev8.core.errors import Conflict, Dev8Error
from dev8.core.workspace import Operation
from dev8.service.workspaces import WorkspaceService
from dev8.store.store import Store

log = logging.getLogger("dev8.operations")
ServiceFor = Callable[[Operation], WorkspaceService]


class OperationRunner:
    def __init__(
        self,
        store: Store,
        service_for: ServiceFor,
        max_attempts: int = 3,
        on_finished: Callable[[Operation], None] = lambda _op: None,
    ) -> None:
        self.store = store
        self.service_for = service_for
        self.max_attempts = max_attempts
        self.on_finished = on_finished

    def run_next(self, workspace_id: str) -> Operation | None:
        """Run the workspace's oldest unfinished operation, unless another process is busy
        with the workspace. Returns the operation as it finished, or None."""
        try:
            with self.store.lock(workspace_id, wait=False):
                return self._run_locked(workspace_id)
        except Conflict:
            return None

    def _run_locked(self, workspace_id: str) -> Operation | None:
        operation = self.store.next_operation(workspace_id)
        if operation is None:
            return None
        claimed = self.store.claim(operation)
        if claimed is None:
            return None
        if claimed.attempts > 1:
            log.warning(
                "resuming %s of workspace %s (attempt %d)",
                claimed.action,
                claimed.workspace_name,
                claimed.attempts,
            )
        try:
            self.service_for(claimed).run(claimed, max_attempts=self.max_attempts)
        except Dev8Error:
            pass  # recorded: the operation failed with its message, the workspace shows it
        except Exception:
            log.exception("operation %s (%s) failed unexpectedly", claimed.id, claimed.action)
        finished = self.store.get_operation(claimed.id)
        self.on_finished(finished)
        return finished
