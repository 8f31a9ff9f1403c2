"""A Pod as the API reports it, turned into the provider-neutral ``RuntimeStatus``. Pure: the
one place that knows Pod phases, container states and the API's timestamps.

On Kubernetes a stopped workspace has no Pod: its claims, Secret and NetworkPolicy are what
``create`` leaves, made and not started, so a workspace without a Pod is ``CREATED``."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timezone
from typing import Any

from dev8.core.states import ContainerState
from dev8.providers.base import PORTS, RuntimeStatus
from dev8.providers.kubernetes.specs import CONTAINER

# The roles of ``PORTS`` a workspace publishes (``WorkspaceSpec.published``), kept on its Pod.
PUBLISHED_ANNOTATION = "dev.dev8.published"
# What the kubelet says of an image it cannot pull: the reference is wrong or unreachable.
IMAGE_ERRORS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)


def container_state(pod: dict[str, Any]) -> ContainerState:
    """The workspace container's state from its Pod's phase and container status."""
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if (pod.get("metadata") or {}).get("deletionTimestamp") or phase in ("Succeeded", "Failed"):
        return ContainerState.EXITED  # being stopped, or ended (evicted, say): never again
    if phase == "Pending":
        return ContainerState.CREATED  # waiting for a node, the image or the claims
    if phase != "Running":
        return ContainerState.UNKNOWN  # "Unknown": its node stopped answering
    if "running" in (workspace_container(pod).get("state") or {}):
        return ContainerState.RUNNING
    # The container exited and waits to be started again (restartPolicy Always).
    return ContainerState.RESTARTING


def pod_status(pod: dict[str, Any]) -> RuntimeStatus:
    """Everything ``RuntimeStatus`` says, from one Pod (listed or read alone: the same)."""
    state = container_state(pod)
    container = workspace_container(pod)
    ended = _terminated(container)
    published = published_roles(pod)
    ports = {role: PORTS[role] for role in published} if state is ContainerState.RUNNING else {}
    return RuntimeStatus(
        state=state,
        container_id=(pod.get("metadata") or {}).get("name"),
        image_id=pod_image(pod),
        exit_code=ended.get("exitCode"),
        oom_killed=ended.get("reason") == "OOMKilled",
        restart_count=int(container.get("restartCount") or 0),
        started_at=started_at(pod),
        ports=ports,
        host_ports={role: PORTS[role] for role in published},
        agent_url=agent_url(state, (pod.get("status") or {}).get("podIP")),
        error=problem(pod),
    )


def not_running_status(pod_manifest: dict[str, Any]) -> RuntimeStatus:
    """A workspace that exists without a Pod, from the Pod it would start (``pod_manifest``)."""
    return RuntimeStatus(
        state=ContainerState.CREATED,
        container_id=pod_manifest["metadata"]["name"],
        image_id=pod_image(pod_manifest),
        host_ports={role: PORTS[role] for role in published_roles(pod_manifest)},
    )


def workspace_container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == CONTAINER), {})


def published_roles(pod: dict[str, Any]) -> tuple[str, ...]:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(PUBLISHED_ANNOTATION)
    roles = (text or "agent").split(",")
    return tuple(role for role in roles if role in PORTS)


def pod_image(pod: dict[str, Any]) -> str | None:
    containers = (pod.get("spec") or {}).get("containers") or []
    return next((c.get("image") for c in containers if c.get("name") == CONTAINER), None)


def agent_url(state: ContainerState, pod_ip: str | None) -> str | None:
    """The Pod's own address: the server reaches the agent there, in the cluster."""
    if state is not ContainerState.RUNNING or not pod_ip:
        return None
    host = f"[{pod_ip}]" if ipaddress.ip_address(pod_ip).version == 6 else pod_ip
    return f"http://{host}:{PORTS['agent']}"


def started_at(pod: dict[str, Any]) -> datetime | None:
    running = (workspace_container(pod).get("state") or {}).get("running") or {}
    return timestamp(running.get("startedAt"))


def timestamp(text: str | None) -> datetime | None:
    """The API's RFC 3339 time (``2026-12-02T01:02:03Z``) as an aware datetime."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def waiting_reason(pod: dict[str, Any]) -> tuple[str, str]:
    """Why the container is not running yet: the kubelet's reason and message."""
    waiting = (workspace_container(pod).get("state") or {}).get("waiting") or {}
    return str(waiting.get("reason") or ""), str(waiting.get("message") or "")


def problem(pod: dict[str, Any]) -> str:
    """One line on what keeps the Pod from running, if anything: the Pod's own reason
    (``Evicted``), the container's (an image that cannot be pulled), or the scheduler's."""
    status = pod.get("status") or {}
    if status.get("reason") or status.get("message"):
        return " ".join(str(status.get(key) or "") for key in ("reason", "message")).strip()
    reason, message = waiting_reason(pod)
    if reason and reason not in ("ContainerCreating", "PodInitializing"):
        return f"{reason}: {message}".rstrip(": ")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"not scheduled: {condition.get('message') or condition.get('reason')}"
    return ""


def _terminated(container: dict[str, Any]) -> dict[str, Any]:
    """The container's last end: now, or before the kubelet started it again."""
    for key in ("state", "lastState"):
        ended = (container.get(key) or {}).get("terminated")
        if ended:
            return dict(ended)
    return {}
