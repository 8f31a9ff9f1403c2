"""A container group as Azure reports it, turned into the provider-neutral ``RuntimeStatus``.
Pure: the one place that knows provisioning states, instance views and ACI's events.

A stopped workspace has no group on ACI (stop deletes it): its shares and record are what
``create`` leaves, made and not started, so a workspace without a group is ``CREATED``."""

from __future__ import annotations

import ipaddress
from datetime import timezone

from azure.mgmt.containerinstance import models as aci

from dev8.core.states import ContainerState
from dev8.providers.aci.specs import CONTAINER
from dev8.providers.base import PORTS, RuntimeStatus

PUBLISHED_TAG = "dev8-published"
WORKSPACE_TAG = "dev8-workspace-id"
# Being made: ACI pulls the image and mounts the shares.
STARTING = frozenset({"Pending", "Creating", "Accepted", "Updating", "Repairing"})
ENDED = frozenset({"Failed", "Canceled", "Deleting", "Unhealthy"})


def group_state(group: aci.ContainerGroup) -> ContainerState:
    """The workspace container's state from the group's provisioning state and, when Azure
    sent them (a GET does, a list does not), the instance views."""
    provisioning = group.provisioning_state or "Pending"
    if provisioning in ENDED:
        return ContainerState.EXITED
    if provisioning in STARTING:
        return ContainerState.CREATED
    current = _current_state(group)
    if current is None:
        overall = group.instance_view.state if group.instance_view else None
        return ContainerState.EXITED if overall == "Stopped" else ContainerState.RUNNING
    if current.state == "Running":
        return ContainerState.RUNNING
    # Waiting or Terminated with restart policy Always: ACI starts it again.
    return ContainerState.RESTARTING


def group_status(group: aci.ContainerGroup) -> RuntimeStatus:
    state = group_state(group)
    container = workspace_container(group)
    view = container.instance_view if container else None
    current = view.current_state if view else None
    published = published_roles(group)
    running = state is ContainerState.RUNNING
    started = current.start_time if current and current.state == "Running" else None
    return RuntimeStatus(
        state=state,
        container_id=group.name,
        image_id=container.image if container else None,
        exit_code=_exit_code(view),
        oom_killed=False,  # ACI does not say
        restart_count=int(view.restart_count or 0) if view else 0,
        started_at=started.astimezone(timezone.utc) if started else None,
        ports={role: PORTS[role] for role in published} if running else {},
        host_ports={role: PORTS[role] for role in published},
        agent_url=agent_url(state, group.ip_address.ip if group.ip_address else None),
        error=problem(group),
    )


def not_running_status(group: aci.ContainerGroup, name: str) -> RuntimeStatus:
    """A workspace that exists without a group, from the group ``name`` it would deploy."""
    container = workspace_container(group)
    return RuntimeStatus(
        state=ContainerState.CREATED,
        container_id=name,
        image_id=container.image if container else None,
        host_ports={role: PORTS[role] for role in published_roles(group)},
    )


def workspace_container(group: aci.ContainerGroup) -> aci.Container | None:
    return next((c for c in group.containers or [] if c.name == CONTAINER), None)


def published_roles(group: aci.ContainerGroup) -> tuple[str, ...]:
    text = (group.tags or {}).get(PUBLISHED_TAG) or "agent"
    return tuple(role for role in text.split(",") if role in PORTS)


def workspace_of(group: aci.ContainerGroup) -> str | None:
    return (group.tags or {}).get(WORKSPACE_TAG)


def agent_url(state: ContainerState, ip: str | None) -> str | None:
    """The group's private address, read fresh each time: a new group may have a new one."""
    if state is not ContainerState.RUNNING or not ip:
        return None
    host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    return f"http://{host}:{PORTS['agent']}"


def problem(group: aci.ContainerGroup) -> str:
    """One line on what keeps the group from running: the last warning event of the
    container or the group (a pull that failed, a share that would not mount)."""
    container = workspace_container(group)
    events: list[aci.Event] = [
        *((container.instance_view.events or []) if container and container.instance_view else []),
        *((group.instance_view.events or []) if group.instance_view else []),
    ]
    warnings = [e for e in events if (e.type or "").lower() == "warning"]
    if warnings:
        last = warnings[-1]
        return f"{last.name or 'Warning'}: {last.message or ''}".rstrip(": ")
    if group.provisioning_state == "Failed":
        return "the container group failed to deploy"
    return ""


def _current_state(group: aci.ContainerGroup) -> aci.ContainerState | None:
    container = workspace_container(group)
    view = container.instance_view if container else None
    return view.current_state if view else None


def _exit_code(view: aci.ContainerPropertiesInstanceView | None) -> int | None:
    if view is None:
        return None
    for state in (view.current_state, view.previous_state):
        if state is not None and state.state == "Terminated":
            return state.exit_code
    return None
