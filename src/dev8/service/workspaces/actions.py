"""The table of actions a queued operation can carry out, and running one.

Each action says what it does (its handler) and the desired state a request for it records;
the server's queue (``dev8.service.requests``), the reconciler and the CLI read the same
table. Work on volumes (backups, snapshots) joins the table through ``handlers``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dev8.core.addresses import Addresses
from dev8.core.clock import utcnow
from dev8.core.errors import Dev8Error, InvalidInput, OperationAbandoned
from dev8.core.states import DesiredState
from dev8.core.workspace import Action, Operation, Workspace
from dev8.providers.base import Provider
from dev8.service.agent_client import AgentClient
from dev8.service.workspaces.base import Progress, quiet
from dev8.service.workspaces.lifecycle import Lifecycle

if TYPE_CHECKING:
    from dev8.service.workspaces import WorkspaceService
    from dev8.store.store import Store

# A queued action's work: (service, workspace, the operation's params, progress) -> outcome.
ActionHandler = Callable[["WorkspaceService", Workspace, dict, Progress], "dict | None"]


@dataclass(frozen=True)
class ActionSpec:
    handler: ActionHandler
    target: DesiredState | None = None  # what a request for it wants; None: unchanged
    marks_activity: bool = False  # a start counts as activity for the idle timer


def _create(service: WorkspaceService, w: Workspace, _params: dict, report: Progress) -> None:
    service._do_create(w, report)


def _start(service: WorkspaceService, w: Workspace, _params: dict, report: Progress) -> None:
    service._do_start(w, report)


def _stop(service: WorkspaceService, w: Workspace, _params: dict, report: Progress) -> None:
    service._do_stop(w, report)


def _restart(service: WorkspaceService, w: Workspace, _params: dict, report: Progress) -> None:
    service._do_restart(w, report)


def _rebuild(service: WorkspaceService, w: Workspace, params: dict, report: Progress) -> None:
    service._do_rebuild(w, params["image_ref"], params["image_id"], report)


def _update(service: WorkspaceService, w: Workspace, _params: dict, report: Progress) -> None:
    service._do_update(w, report)


def _remove(service: WorkspaceService, w: Workspace, _params: dict, report: Progress) -> dict:
    return {"destroyed_volumes": service._do_remove(w, False, report)}


def _purge(service: WorkspaceService, w: Workspace, _params: dict, report: Progress) -> dict:
    return {"destroyed_volumes": service._do_remove(w, True, report)}


LIFECYCLE_ACTIONS: Mapping[str, ActionSpec] = {
    Action.CREATE: ActionSpec(_create),
    Action.START: ActionSpec(_start, DesiredState.RUNNING, marks_activity=True),
    Action.STOP: ActionSpec(_stop, DesiredState.STOPPED),
    Action.RESTART: ActionSpec(_restart, DesiredState.RUNNING, marks_activity=True),
    Action.REBUILD: ActionSpec(_rebuild, DesiredState.RUNNING, marks_activity=True),
    Action.UPDATE: ActionSpec(_update, marks_activity=True),
    Action.REMOVE: ActionSpec(_remove, DesiredState.REMOVED),
    Action.PURGE: ActionSpec(_purge, DesiredState.REMOVED),
}
# What a user may ask for by name (POST /workspaces/{name}/{action}, `dev8 ACTION NAME`).
REQUESTABLE = (Action.START, Action.STOP, Action.RESTART, Action.REBUILD)


class Actions(Lifecycle):
    def __init__(
        self,
        *,
        store: Store,
        provider: Provider,
        owner: str,
        authorized_keys: Callable[[], str] | None = None,
        account_dotfiles: Callable[[], str] = lambda: "",
        agent: AgentClient | None = None,
        actor: str | None = None,
        handlers: Mapping[str, ActionHandler] | None = None,
        relay: Addresses | None = None,
        default_image: str | None = None,
    ) -> None:
        super().__init__(
            store=store,
            provider=provider,
            owner=owner,
            authorized_keys=authorized_keys,
            account_dotfiles=account_dotfiles,
            agent=agent,
            actor=actor,
            relay=relay,
            default_image=default_image,
        )
        self.actions: dict[str, ActionSpec] = {
            **LIFECYCLE_ACTIONS,
            **{name: ActionSpec(handler) for name, handler in (handlers or {}).items()},
        }

    def run(
        self, operation: Operation, progress: Progress = quiet, max_attempts: int = 3
    ) -> Workspace | None:
        """Run a recorded operation (queued by the server, claimed by its reconciler, which
        holds the lock). Every action is idempotent, so one interrupted by a crash is simply
        run again, up to ``max_attempts`` times. Returns the workspace, or None once purged."""
        workspace = self.store.get(operation.workspace_id or "")
        with self.recorded(operation, progress) as report:
            undo = operation.action == Action.CREATE
            with (
                self._undo_failed_create(workspace, operation) if undo else contextlib.nullcontext()
            ):
                self._run_body(workspace, operation, report, max_attempts)
        if operation.action == Action.PURGE:
            self.store.fail_pending(workspace.id, "not run: the workspace was purged")
            self.store.delete(workspace.id)
            return None
        return workspace

    def _run_body(
        self, workspace: Workspace, operation: Operation, progress: Progress, max_attempts: int
    ) -> None:
        if operation.attempts > 1:
            if operation.attempts > max_attempts:
                raise OperationAbandoned(
                    f"interrupted {operation.attempts - 1} times (the server stopped while "
                    "running it); giving up"
                )
            progress(f"resuming after an interruption (attempt {operation.attempts})")
        spec = self.actions.get(operation.action)
        if spec is None:
            raise InvalidInput(f"unknown operation {operation.action!r}")
        outcome = spec.handler(self, workspace, operation.params, progress)  # type: ignore[arg-type]
        if outcome is not None:
            operation.outcome = outcome
        if spec.marks_activity:
            self.store.touch_activity(workspace.id, utcnow())
        operation.message = str(operation.params.get("message", ""))

    @contextlib.contextmanager
    def _undo_failed_create(self, workspace: Workspace, operation: Operation) -> Iterator[None]:
        """A queued create that fails takes away what it made for a workspace that is new,
        keeps the record (failed, with the reason) and fails what was queued after it."""
        try:
            yield
        except Exception as exc:
            if not operation.params.get("adopted"):
                with contextlib.suppress(Dev8Error):
                    self.provider.remove(workspace.id)
                    self.provider.remove_volumes(workspace.id)
            reason = exc.message if isinstance(exc, Dev8Error) else repr(exc)
            self.store.fail_pending(workspace.id, f"not run: the create failed ({reason})")
            raise
