"""Pure builders for the Docker objects of a workspace, tested without an engine."""

from __future__ import annotations

from typing import Any

from dev8.core.naming import VOLUME_MOUNTS, VOLUME_ROLES, container_name, labels, volume_name
from dev8.providers.base import PORTS, WorkspaceSpec

# /run is memory-backed: the agent puts secrets there (GitHub token, SSH keys from the
# environment) and they must never land on a volume or the container's disk.
RUN_TMPFS = "rw,nosuid,nodev,mode=0755,size=64m"


def volume_specs(spec: WorkspaceSpec) -> list[dict[str, Any]]:
    return [
        {
            "name": volume_name(spec.workspace_id, role),
            "driver": "local",
            "labels": labels(spec.workspace_id, spec.owner, role, spec.name),
        }
        for role in VOLUME_ROLES
    ]


def port_bindings(host_ports: dict[str, int]) -> dict[str, tuple[str, int | None]]:
    """Every port on 127.0.0.1 only, on the given host ports (``None``: engine's choice)."""
    return {f"{port}/tcp": ("127.0.0.1", host_ports.get(role)) for role, port in PORTS.items()}


def container_spec(spec: WorkspaceSpec) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create``."""
    return {
        "image": spec.image,
        "name": container_name(spec.workspace_id),
        "hostname": spec.name,
        "labels": labels(spec.workspace_id, spec.owner, "container", spec.name),
        "environment": {**spec.env, "ENVIRONMENT_ID": spec.workspace_id},
        "ports": port_bindings(dict(spec.host_ports)),
        "volumes": {
            volume_name(spec.workspace_id, role): {"bind": VOLUME_MOUNTS[role], "mode": "rw"}
            for role in VOLUME_ROLES
        },
        "tmpfs": {"/run": RUN_TMPFS},
        "restart_policy": {"Name": "unless-stopped"},
        "nano_cpus": int(spec.resources.cpus * 1e9),
        "mem_limit": f"{spec.resources.memory_mb}m",
        "stop_signal": "SIGTERM",
        "detach": True,
    }


def published_ports(bindings: dict[str, Any] | None) -> dict[str, int]:
    """Host ports by role, from an inspected container's ``NetworkSettings.Ports`` (what is
    published now) or ``HostConfig.PortBindings`` (what is configured)."""
    found: dict[str, int] = {}
    bound = bindings or {}
    for role, port in PORTS.items():
        for binding in bound.get(f"{port}/tcp") or []:
            if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
                found[role] = int(binding["HostPort"])
                break
    return found


def summary_ports(ports: list[dict[str, Any]] | None) -> dict[str, int]:
    """Host ports by role, from a container list entry's ``Ports``."""
    by_container_port = {port: role for role, port in PORTS.items()}
    found: dict[str, int] = {}
    for entry in ports or []:
        role = by_container_port.get(entry.get("PrivatePort"))
        if role and entry.get("PublicPort") and entry.get("IP") in ("127.0.0.1", "", None):
            found.setdefault(role, int(entry["PublicPort"]))
    return found
