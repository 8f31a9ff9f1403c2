"""How workspaces and operations look on the terminal and in --json output."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from dev8.cli.tables import Column, render
from dev8.core.environment import user_secret_names
from dev8.core.quotas import QuotaUse, effective_quotas
from dev8.core.states import ObservedState
from dev8.core.workspace import Operation, Workspace

if TYPE_CHECKING:
    from rich.table import Table

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
        "dotfiles_repo": workspace.dotfiles_repo,
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
    workspaces: list[Workspace], uses: dict[str, list[QuotaUse]] | None = None, width: int = 80
) -> Table:
    """One row per workspace. In a narrow terminal the less important columns are left out
    (created, resources, disk, ports, IDE, in that order); names are never cut, and the
    message wraps in what width is left."""
    uses = uses or {}
    columns = [
        Column("NAME", 0, cells=[escape(ws.name) for ws in workspaces]),
        Column("STATE", 1, cells=[state_text(ws) for ws in workspaces]),
        Column("IDE", 3, cells=[ws.ide_url or "-" for ws in workspaces]),
        Column("SSH", 4, cells=[str(ws.ports.get("ssh", "-")) for ws in workspaces]),
        Column("CPU/MEM", 6, cells=[_resources(ws) for ws in workspaces]),
        Column("DISK", 5, cells=[_disk(uses.get(ws.id, [])) for ws in workspaces]),
        Column("CREATED", 7, cells=[ago(ws.created_at) for ws in workspaces]),
        Column("MESSAGE", 2, wrap=True, cells=[escape(ws.status_message) for ws in workspaces]),
    ]
    return render(columns, width)


def _resources(workspace: Workspace) -> str:
    return f"{workspace.resources.cpus:g}/{workspace.resources.memory_mb / 1024:g}G"


def _disk(uses: list[QuotaUse]) -> str:
    return " ".join(use_text(use, short=True) for use in uses) or "-"


def history_table(operations: list[Operation], width: int = 80) -> Table:
    """One row per operation, newest first; the message wraps in what width is left."""
    columns = [
        Column("WHEN", 0, cells=[_local_time(op.started_at) for op in operations]),
        Column("ACTION", 1, cells=[str(op.action) for op in operations]),
        Column("BY", 3, cells=[escape(op.actor) for op in operations]),
        Column("RESULT", 2, cells=[_result(op.result) for op in operations]),
        Column("DURATION", 4, cells=[_duration(op.duration_s) for op in operations]),
        Column("MESSAGE", 5, wrap=True, cells=[escape(op.message) for op in operations]),
    ]
    return render(columns, width)


def _local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _result(result: str) -> str:
    style = {"succeeded": "green", "failed": "red"}.get(result, "yellow")
    return f"[{style}]{result}[/]"


def _duration(seconds: float | None) -> str:
    return f"{seconds:.1f} s" if seconds is not None else "-"
