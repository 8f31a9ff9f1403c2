"""How workspaces and operations look on the terminal and in --json output."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.table import Table

from dev8.core.environment import user_secret_names
from dev8.core.quotas import QuotaUse, effective_quotas
from dev8.core.states import ObservedState
from dev8.core.workspace import Operation, Workspace

STATE_STYLE = {
    ObservedState.RUNNING: "green",
    ObservedState.STARTING: "yellow",
    ObservedState.STOPPED: "dim",
    ObservedState.UNHEALTHY: "red",
    ObservedState.CRASHED: "red",
    ObservedState.FAILED: "red",
    ObservedState.MISSING: "red",
    ObservedState.UNKNOWN: "red",
}


def workspace_dict(workspace: Workspace) -> dict[str, Any]:
    """Public fields only: secret values never appear, their names do."""
    return {
        "id": workspace.id,
        "name": workspace.name,
        "owner": workspace.owner,
        "image": workspace.image_ref,
        "image_id": workspace.image_id,
        "cpus": workspace.resources.cpus,
        "memory_mb": workspace.resources.memory_mb,
        "desired_state": workspace.desired_state.value,
        "state": workspace.observed_state.value,
        "message": workspace.status_message,
        "ports": workspace.ports,
        "ide_url": workspace.ide_url,
        "env": workspace.env,
        "secret_names": user_secret_names(workspace.secrets),
        "quotas": effective_quotas(workspace.quotas),
        "created_at": workspace.created_at,
        "updated_at": workspace.updated_at,
    }


def operation_dict(operation: Operation) -> dict[str, Any]:
    return {
        "id": operation.id,
        "action": operation.action,
        "actor": operation.actor,
        "result": operation.result,
        "message": operation.message,
        "started_at": operation.started_at,
        "finished_at": operation.finished_at,
        "duration_s": operation.duration_s,
    }


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    seconds = (datetime.now(timezone.utc) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def state_text(workspace: Workspace) -> str:
    style = STATE_STYLE.get(workspace.observed_state, "")
    return (
        f"[{style}]{workspace.observed_state.value}[/]" if style else workspace.observed_state.value
    )


LEVEL_STYLE = {"warning": "yellow", "critical": "red", "over": "bold red"}


def disk_uses(workspace: Workspace, agent: dict | None) -> list[QuotaUse]:
    """Use of the quota'd volumes, from what the agent measured, against the limits it
    runs with (what the workspace was created with; the stored ones if it does not say)."""
    disk = (agent or {}).get("disk") or {}
    limits = effective_quotas(workspace.quotas)
    return [
        QuotaUse(role, int(disk[role]["used_bytes"]), int(disk[role].get("quota_bytes", limit)))
        for role, limit in limits.items()
        if "used_bytes" in (disk.get(role) or {})
    ]


def disk_dict(uses: list[QuotaUse]) -> dict[str, Any]:
    return {
        use.role: {
            "used_bytes": use.used,
            "quota_bytes": use.limit,
            "percent": use.percent,
            "level": use.level,
        }
        for use in uses
    }


def use_text(use: QuotaUse, short: bool = False) -> str:
    text = f"{use.role} {use.percent}%" if short else use.describe()
    style = LEVEL_STYLE.get(use.level)
    return f"[{style}]{text}[/]" if style else text


def workspace_table(
    workspaces: list[Workspace], uses: dict[str, list[QuotaUse]] | None = None
) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    columns = ("NAME", "STATE", "IDE", "SSH PORT", "CPU/MEM", "DISK", "CREATED", "MESSAGE")
    for column in columns:
        table.add_column(column, no_wrap=column != "MESSAGE", overflow="fold")
    for ws in workspaces:
        disk = " ".join(use_text(u, short=True) for u in (uses or {}).get(ws.id, [])) or "-"
        table.add_row(
            ws.name,
            state_text(ws),
            ws.ide_url or "-",
            str(ws.ports.get("ssh", "-")),
            f"{ws.resources.cpus:g}/{ws.resources.memory_mb / 1024:g}G",
            disk,
            ago(ws.created_at),
            ws.status_message,
        )
    return table


def history_table(operations: list[Operation]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("WHEN", "ACTION", "BY", "RESULT", "DURATION", "MESSAGE"):
        table.add_column(column, overflow="fold")
    for op in operations:
        style = {"succeeded": "green", "failed": "red"}.get(op.result, "yellow")
        duration = f"{op.duration_s:.1f} s" if op.duration_s is not None else "-"
        table.add_row(
            op.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            op.action,
            op.actor,
            f"[{style}]{op.result}[/]",
            duration,
            op.message,
        )
    return table
