"""What the server's API does with a change: check it, record the desired state and queue
the operation(s) at once, and leave the work to the reconciler (``dev8.service.operations``).

Checks that need no waiting happen here, so that a bad request fails with its error before
anything is recorded: invalid names, duplicates, missing images.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from dev8.core.environment import IDE_PASSWORD
from dev8.core.errors import Conflict, InvalidInput
from dev8.core.resources import Resources
from dev8.core.states import DesiredState
from dev8.core.workspace import Action, Operation, Workspace
from dev8.service.policy import KEEP_AT_MOST, MemberPolicy, Usage, owner_lock, quota_bytes
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
    def __init__(self, service: WorkspaceService, policy: MemberPolicy | None = None) -> None:
        self.service = service
        self.store = service.store
        self.policy = policy  # None: no limits (local mode, the server's own follow-ups)

    def create(self, request: CreateRequest, start: bool = True) -> Accepted:
        with self._counting():
            if self.policy is not None:
                usage = self._usage(besides=request.name) if self.policy.member else Usage()
                self.policy.check_create(request, usage)
            return self._create(request, start)

    def _create(self, request: CreateRequest, start: bool) -> Accepted:
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
            if self.policy is not None:
                self.policy.check_image(image)
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
        if resources is not None and self.policy is not None:
            self.policy.check_resources(resources, workspace.resources)
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
        if action == Action.BACKUP and self.policy is not None and self.policy.member:
            # Checked here to answer at once; the backup, when it runs, checks again
            # (``KeptBackups``): backups queued side by side cannot pass the limit together.
            kept = self.policy.count_kept_backups([w.id for w in self._owned()])
            params = {**params, KEEP_AT_MOST: self.policy.backup_limit(kept)}
        operation = new_operation(workspace, action, self.service.actor, params=params)
        self.store.queue(workspace, [operation])
        return Accepted(workspace, [operation])

    @contextlib.contextmanager
    def _counting(self) -> Iterator[None]:
        """Hold the owner's lock while a member's usage is counted and added to, so that
        requests side by side cannot pass a limit together."""
        if self.policy is None or not self.policy.member:
            yield
            return
        with self.store.lock(owner_lock(self.service.owner)):
            yield

    def _owned(self) -> list[Workspace]:
        return self.store.list(owner=self.service.owner, include_removed=True, with_secrets=False)

    def _usage(self, besides: str) -> Usage:
        others = [w for w in self._owned() if w.name != besides]
        return Usage(len(others), sum(quota_bytes(w.quotas) for w in others))

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
