"""What the server's API does with a change: check it, record the desired state and queue
the operation(s) at once, and leave the work to the reconciler (``dev8.service.operations``).

Checks that need no waiting happen here, so that a bad request fails with its error before
anything is recorded: invalid names, duplicates, missing images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dev8.core.environment import IDE_PASSWORD
from dev8.core.errors import Conflict, InvalidInput
from dev8.core.resources import Resources
from dev8.core.states import DesiredState
from dev8.core.workspace import Action, Operation, Workspace
from dev8.service.workspaces import (
    LIFECYCLE_ACTIONS,
    REQUESTABLE,
    CreateRequest,
    WorkspaceService,
)
from dev8.store.store import UNSET, new_operation

MAX_IDLE_TIMEOUT_S = 7 * 24 * 3600


@dataclass
class Accepted:
    """A change that was recorded: the workspace as it now stands and what was queued."""

    workspace: Workspace
    operations: list[Operation] = field(default_factory=list)


class WorkspaceRequests:
    def __init__(self, service: WorkspaceService) -> None:
        self.service = service
        self.store = service.store

    def create(self, request: CreateRequest, start: bool = True) -> Accepted:
        workspace, previous = self.service.prepare_create(request)
        desired = DesiredState.RUNNING if start else DesiredState.STOPPED
        actor = self.service.actor
        operations = [
            new_operation(workspace, Action.CREATE, actor, params={"adopted": bool(previous)})
        ]
        if start:
            operations.append(new_operation(workspace, Action.START, actor, offset=1))
        if previous is None:
            workspace.desired_state = desired
            self.store.add(workspace, operations)
        else:
            self._refuse_if_busy(previous)
            self.store.save_status(previous)  # the image it now uses
            self.store.queue(previous, operations, desired)
        return Accepted(workspace, operations)

    def action(self, name: str, action: str, image: str | None = None) -> Accepted:
        if action not in REQUESTABLE:
            choices = ", ".join(a.value for a in REQUESTABLE)
            raise InvalidInput(f"unknown action {action!r}; use {choices}")
        workspace = self.service.find(name)
        params = {}
        if action == Action.REBUILD:
            reference = image or workspace.image_ref
            params = {"image_ref": reference, "image_id": self.service.provider.image_id(reference)}
        elif image is not None:
            raise InvalidInput("only a rebuild takes an image")
        operation = new_operation(workspace, action, self.service.actor, params=params)
        self.store.queue(workspace, [operation], LIFECYCLE_ACTIONS[action].target)
        return Accepted(workspace, [operation])

    def remove(self, name: str, purge: bool = False) -> Accepted:
        """Remove the container (volumes stay), or with ``purge`` destroy everything. A
        removed workspace can still be purged."""
        workspace = self.service.find_known(name) if purge else self.service.find(name)
        action = Action.PURGE if purge else Action.REMOVE
        operation = new_operation(workspace, action, self.service.actor)
        self.store.queue(workspace, [operation], DesiredState.REMOVED)
        return Accepted(workspace, [operation])

    def update(
        self,
        name: str,
        *,
        resources: Resources | None = None,
        idle_timeout_s: int | None = UNSET,
        ide_password: str | None = None,
    ) -> Accepted:
        """Change settings. The idle timeout applies at once; resources and the IDE password
        need a new container, which an ``update`` operation makes."""
        workspace = self.service.find(name)
        if idle_timeout_s is not UNSET and idle_timeout_s is not None:
            check_idle_timeout(idle_timeout_s)
        secrets = None
        if ide_password is not None:
            secrets = {**workspace.secrets, IDE_PASSWORD: ide_password}
        changed = [
            label
            for label, value in (("resources", resources), ("IDE password", ide_password))
            if value is not None
        ]
        if resources == workspace.resources:
            changed.remove("resources")
        self.store.update_settings(
            workspace.id, resources=resources, idle_timeout_s=idle_timeout_s, secrets=secrets
        )
        operations = []
        if changed:
            operation = new_operation(
                workspace,
                Action.UPDATE,
                self.service.actor,
                params={"message": f"applied new {' and '.join(changed)}"},
            )
            self.store.queue(workspace, [operation])
            operations.append(operation)
        return Accepted(self.store.get(workspace.id), operations)

    def job(self, workspace: Workspace, action: str, params: dict) -> Accepted:
        """Queue work on the workspace's volumes (backup, restore, snapshot...), whose
        parameters the caller checked; the desired state stays what it is."""
        operation = new_operation(workspace, action, self.service.actor, params=params)
        self.store.queue(workspace, [operation])
        return Accepted(workspace, [operation])

    def _refuse_if_busy(self, workspace: Workspace) -> None:
        pending = self.store.next_operation(workspace.id)
        if pending is not None:
            raise Conflict(
                f"workspace {workspace.name} is still being changed (operation {pending.id}, "
                f"{pending.action}); try again when it has finished"
            )


def check_idle_timeout(seconds: int) -> int:
    if seconds < 0 or seconds > MAX_IDLE_TIMEOUT_S:
        raise InvalidInput(
            f"idle timeout {seconds} s is out of range; use 0 (never) to {MAX_IDLE_TIMEOUT_S} s"
        )
    return seconds
