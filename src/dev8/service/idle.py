"""When an idle workspace is stopped. Pure: the reconciler feeds it times."""

from __future__ import annotations

from datetime import datetime, timedelta

from dev8.core.workspace import Workspace


def effective_timeout_s(workspace: Workspace, default_s: int) -> int:
    """The workspace's own timeout, or the server's default; 0 means never."""
    return default_s if workspace.idle_timeout_s is None else workspace.idle_timeout_s


def idle_deadline(workspace: Workspace, default_s: int) -> datetime | None:
    """When the workspace becomes idle-stoppable, or None if it never does. The clock runs
    from the last activity (a start counts), else from its creation."""
    timeout = effective_timeout_s(workspace, default_s)
    since = workspace.last_activity_at or workspace.created_at
    if timeout <= 0 or since is None:
        return None
    return since + timedelta(seconds=timeout)


def describe_idle(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
