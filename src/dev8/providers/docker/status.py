"""Docker's view of a container turned into the provider-neutral ``RuntimeStatus``. Pure:
this is the one place that knows Docker's state names and timestamp format."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from dev8.core.naming import LABEL_ROLE, LABEL_WORKSPACE_ID
from dev8.core.states import ContainerState
from dev8.providers.base import RuntimeStatus
from dev8.providers.container import CONTAINER_ROLE
from dev8.providers.docker.specs import published_ports, summary_ports

_STATES = {
    "running": ContainerState.RUNNING,
    "restarting": ContainerState.RESTARTING,
    "paused": ContainerState.PAUSED,
    "created": ContainerState.CREATED,
    "exited": ContainerState.EXITED,
    "dead": ContainerState.EXITED,
    "removing": ContainerState.EXITED,
}


def container_state(docker_state: str | None) -> ContainerState:
    return _STATES.get(docker_state or "", ContainerState.UNKNOWN)


def started_at(timestamp: str | None) -> datetime | None:
    """Docker's ``State.StartedAt`` (RFC 3339 with nanoseconds; year 1 if it never
    started) as an aware datetime."""
    if not timestamp or timestamp.startswith("0001-"):
        return None
    head, _, rest = timestamp.rstrip("Z").partition(".")
    fraction = rest.split("+")[0].split("-")[0][:6]
    try:
        parsed = datetime.fromisoformat(head + ("." + fraction if fraction else ""))
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc)


def agent_url(state: ContainerState, ports: dict[str, int]) -> str | None:
    """The agent's published loopback port is how this host reaches it."""
    port = ports.get("agent")
    if state is not ContainerState.RUNNING or not port:
        return None
    return f"http://127.0.0.1:{port}"


def inspected_status(container_id: str | None, attrs: dict[str, Any]) -> RuntimeStatus:
    """From ``docker inspect``'s attributes of a workspace container."""
    state_attrs = attrs.get("State") or {}
    state = (
        ContainerState.RESTARTING
        if state_attrs.get("Restarting")
        else container_state(state_attrs.get("Status"))
    )
    ports = published_ports((attrs.get("NetworkSettings") or {}).get("Ports"))
    return RuntimeStatus(
        state=state,
        container_id=container_id,
        image_id=attrs.get("Image"),
        exit_code=state_attrs.get("ExitCode"),
        oom_killed=bool(state_attrs.get("OOMKilled")),
        restart_count=int(attrs.get("RestartCount") or 0),
        started_at=started_at(state_attrs.get("StartedAt")),
        ports=ports,
        host_ports=published_ports((attrs.get("HostConfig") or {}).get("PortBindings")),
        agent_url=agent_url(state, ports),
        error=state_attrs.get("Error") or "",
    )


def listed_status(summary: dict[str, Any]) -> RuntimeStatus:
    """From one entry of the engine's container list (no inspect per container)."""
    state = container_state(summary.get("State"))
    ports = summary_ports(summary.get("Ports"))
    return RuntimeStatus(
        state=state,
        container_id=summary.get("Id"),
        image_id=summary.get("ImageID"),
        ports=ports,
        agent_url=agent_url(state, ports),
    )


def workspace_statuses(summaries: Iterable[dict[str, Any]]) -> dict[str, RuntimeStatus]:
    """Workspace id -> status, from the engine's list of containers labelled with a
    workspace id (helper containers carry the label too, with another role)."""
    found: dict[str, RuntimeStatus] = {}
    for summary in summaries:
        labels = summary.get("Labels") or {}
        if labels.get(LABEL_ROLE) == CONTAINER_ROLE:
            found[labels[LABEL_WORKSPACE_ID]] = listed_status(summary)
    return found
