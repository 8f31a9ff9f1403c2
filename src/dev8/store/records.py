"""Rows to ``dev8.core`` records and back: the one place that knows both shapes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dev8.core.clock import utcnow
from dev8.core.errors import SecretsUnreadable
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import PENDING, Operation, OperationEvent, Workspace
from dev8.store.secretbox import SecretBox, open_without_key, secret_names

if TYPE_CHECKING:  # reading a record needs no SQLAlchemy (``dev8.store.readonly``)
    from dev8.store.models import OperationEventRow, OperationRow, WorkspaceRow

_DESIRED = {state.value: state for state in DesiredState}
_OBSERVED = {state.value: state for state in ObservedState}


def to_workspace(row: Any, box: SecretBox | None, with_secrets: bool = True) -> Workspace:
    """A record from an ORM row or a plain result row. Without ``with_secrets`` only the
    secrets' names are read (no decryption: what listings need)."""
    values = row._asdict() if hasattr(row, "_asdict") else row.__dict__
    stored = values["secrets"]
    if not with_secrets:
        secrets = dict.fromkeys(secret_names(stored), "")
    elif box:
        secrets = box.open(stored)
    else:
        secrets = open_without_key(stored)
    return Workspace(
        id=values["id"],
        name=values["name"],
        owner=values["owner"],
        image_ref=values["image_ref"],
        image_id=values["image_id"],
        resources=Resources(values["cpus"], values["memory_mb"]),
        env=dict(values["env"] or {}),
        secrets=secrets,
        desired_state=_DESIRED[values["desired_state"]],
        observed_state=_OBSERVED[values["observed_state"]],
        status_message=values["status_message"],
        container_id=values["container_id"],
        ports=dict(values["ports"] or {}),
        agent_url=values.get("agent_url"),
        host_ports=dict(values.get("host_ports") or {}),
        fixed_ports=dict(values.get("fixed_ports") or {}),
        quotas=dict(values.get("quotas") or {}),
        idle_timeout_s=values["idle_timeout_s"],
        dotfiles_repo=values.get("dotfiles_repo"),
        last_activity_at=values["last_activity_at"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
        secrets_loaded=with_secrets,
    )


def seal(box: SecretBox | None, secrets: dict[str, str]) -> dict[str, Any]:
    return box.seal(secrets) if box else dict(secrets)


def fill_row(row: WorkspaceRow, workspace: Workspace, box: SecretBox | None) -> None:
    """Every column of ``row`` from ``workspace``."""
    if not workspace.secrets_loaded:
        raise SecretsUnreadable(
            f"internal: workspace {workspace.name} was read without its secrets and cannot "
            "be written back"
        )
    row.name, row.owner = workspace.name, workspace.owner
    row.cpus, row.memory_mb = workspace.resources.cpus, workspace.resources.memory_mb
    row.env, row.secrets = dict(workspace.env), seal(box, workspace.secrets)
    row.desired_state = workspace.desired_state.value
    row.fixed_ports = dict(workspace.fixed_ports)
    row.quotas, row.idle_timeout_s = dict(workspace.quotas), workspace.idle_timeout_s
    row.dotfiles_repo = workspace.dotfiles_repo
    row.last_activity_at = workspace.last_activity_at
    fill_status(row, workspace)


def fill_status(row: WorkspaceRow, workspace: Workspace) -> None:
    """The columns operations and observation own (see ``Store.save_status``)."""
    row.image_ref, row.image_id = workspace.image_ref, workspace.image_id
    row.observed_state = workspace.observed_state.value
    row.status_message = workspace.status_message
    row.container_id, row.ports = workspace.container_id, dict(workspace.ports)
    row.host_ports = dict(workspace.host_ports)
    row.agent_url = workspace.agent_url


def new_operation(
    workspace: Workspace,
    action: str,
    actor: str,
    *,
    result: str = PENDING,
    params: dict[str, Any] | None = None,
    offset: int = 0,
) -> Operation:
    """An operation record, not yet stored. ``offset`` (microseconds) orders several asked
    for in the same instant."""
    return Operation(
        id=uuid.uuid4().hex,
        workspace_id=workspace.id,
        action=action,
        actor=actor,
        started_at=utcnow() + timedelta(microseconds=offset),
        result=result,
        owner=workspace.owner,
        workspace_name=workspace.name,
        params=dict(params or {}),
    )


def to_operation(row: OperationRow) -> Operation:
    return Operation(
        id=row.id,
        workspace_id=row.workspace_id,
        action=row.action,
        actor=row.actor,
        started_at=row.started_at,
        result=row.result,
        message=row.message,
        finished_at=row.finished_at,
        owner=row.owner,
        workspace_name=row.workspace_name,
        params=dict(row.params or {}),
        outcome=dict(row.outcome or {}),
        attempts=row.attempts,
    )


def operation_row(operation: Operation) -> OperationRow:
    from dev8.store.models import OperationRow

    return OperationRow(
        id=operation.id,
        workspace_id=operation.workspace_id,
        action=operation.action,
        actor=operation.actor,
        result=operation.result,
        message=operation.message,
        started_at=operation.started_at,
        finished_at=operation.finished_at,
        owner=operation.owner,
        workspace_name=operation.workspace_name,
        params=dict(operation.params),
        outcome=dict(operation.outcome),
        attempts=operation.attempts,
    )


def to_event(row: OperationEventRow) -> OperationEvent:
    return OperationEvent(row.seq, row.operation_id, row.at, row.message)
