"""Pure builders for the Docker objects of a workspace, tested without an engine."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

from dev8.core.naming import (
    HELPER_ROLE,
    LABEL_PREFIX,
    VOLUME_MOUNTS,
    VOLUME_ROLES,
    container_name,
    helper_name,
    labels,
    volume_name,
)
from dev8.providers.base import PORTS, HelperJob, HelperMount, WorkspaceSpec
from dev8.providers.container import (
    CAPABILITIES,
    CONTAINER_ROLE,
    NETWORK_ROLE,
    RUN_DIR,
    RUN_SIZE_MIB,
    container_environment,
)

# Which dev8 process runs a helper: a helper whose process is gone was left by a killed command.
LABEL_CLIENT = f"{LABEL_PREFIX}.client"

RUN_TMPFS = f"rw,nosuid,nodev,mode=0755,size={RUN_SIZE_MIB}m"
PIDS_LIMIT = 4096  # a fork bomb stops here instead of exhausting the host's PIDs
LOG_CONFIG = {"type": "json-file", "config": {"max-size": "10m", "max-file": "3"}}
HELPER_PIDS_LIMIT = 1024
HELPER_MEMORY = "4g"  # restic's index for a large repository fits; tar and zstd need little
HELPER_CPU_SHARES = 512  # half a workspace's weight when the CPUs are contended, none otherwise
# The engine's record of a workspace's desired state, set at every start and stop: a running
# one comes back whenever the engine starts again, a stopped one stays stopped. Not
# "unless-stopped": an engine that crashed stops the containers it finds still running as it
# comes back (without live-restore), as if by hand, and "unless-stopped" then never restarts
# them; "always" does, and dev8's own stop sets "no", which "always" would not respect.
RESTART_WHILE_RUNNING = {"Name": "always"}
RESTART_WHILE_STOPPED = {"Name": "no"}
# The engine's name for the Linux bridge of a network; the interface name limit is 15.
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
BRIDGE_PREFIX = "dev8-"


def volume_specs(spec: WorkspaceSpec) -> list[dict[str, Any]]:
    return [
        {
            "name": volume_name(spec.workspace_id, role),
            "driver": "local",
            "labels": labels(spec.workspace_id, spec.owner, role, spec.name),
        }
        for role in VOLUME_ROLES
    ]


def network_name(workspace_id: str) -> str:
    """Each workspace has its own bridge network: workspaces never share a link."""
    return f"dev8-{workspace_id}"


def bridge_name(workspace_id: str) -> str:
    """The bridge's interface name: ``dev8-`` and 10 characters of the id (15 at most),
    so that the host firewall matches every workspace bridge as ``dev8-+``."""
    return BRIDGE_PREFIX + workspace_id[:10]


def network_spec(spec: WorkspaceSpec, subnet: IPv4Network | None) -> dict[str, Any]:
    """Keyword arguments for ``client.networks.create``; ``subnet`` None: engine's choice."""
    created: dict[str, Any] = {
        "name": network_name(spec.workspace_id),
        "driver": "bridge",
        "options": {BRIDGE_NAME_OPTION: bridge_name(spec.workspace_id)},
        "labels": labels(spec.workspace_id, spec.owner, NETWORK_ROLE, spec.name),
        "check_duplicate": True,
    }
    if subnet is not None:
        created["ipam"] = {"Driver": "default", "Config": [{"Subnet": str(subnet)}]}
    return created


def port_bindings(
    host_ports: dict[str, int], published: tuple[str, ...] = tuple(PORTS)
) -> dict[str, tuple[str, int | None]]:
    """The ``published`` roles' ports on 127.0.0.1 only, on the given host ports
    (``None``: engine's choice)."""
    return {
        f"{port}/tcp": ("127.0.0.1", host_ports.get(role))
        for role, port in PORTS.items()
        if role in published
    }


def container_spec(spec: WorkspaceSpec) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create``."""
    return {
        "image": spec.image,
        "name": container_name(spec.workspace_id),
        "hostname": spec.name,
        "labels": labels(spec.workspace_id, spec.owner, CONTAINER_ROLE, spec.name),
        "environment": container_environment(spec),
        "ports": port_bindings(dict(spec.host_ports), spec.published),
        # The network's name as the network mode: attached to it alone, not the default bridge.
        "network_mode": network_name(spec.workspace_id),
        "volumes": {
            volume_name(spec.workspace_id, role): {"bind": VOLUME_MOUNTS[role], "mode": "rw"}
            for role in VOLUME_ROLES
        },
        "tmpfs": {RUN_DIR: RUN_TMPFS},
        "restart_policy": RESTART_WHILE_STOPPED,  # created stopped; start sets it running
        "nano_cpus": int(spec.resources.cpus * 1e9),
        "mem_limit": f"{spec.resources.memory_mb}m",
        # Memory and swap together within the preset: no swap beyond it on a host that has any.
        "memswap_limit": f"{spec.resources.memory_mb}m",
        "cap_drop": ["ALL"],
        "cap_add": list(CAPABILITIES),
        "pids_limit": PIDS_LIMIT,
        "log_config": LOG_CONFIG,
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


def client_label(hostname: str, pid: int) -> str:
    return f"{hostname}:{pid}"


def helper_container_spec(job: HelperJob, client: str) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` of a helper container.

    Root (volumes hold files of several owners and the system volume is root's), no network
    unless asked, no restart, and stdin kept open for the job's small input when it has any.
    """
    mounts = [_mount(mount) for mount in job.mounts]
    spec: dict[str, Any] = {
        "image": job.image,
        "command": list(job.argv),
        "name": helper_name(job.workspace_id, job.purpose),
        "labels": {
            **labels(job.workspace_id, job.owner, HELPER_ROLE),
            LABEL_CLIENT: client,
        },
        "environment": dict(job.env),
        "mounts": mounts,
        "user": "root",
        "network_mode": "host" if job.network else "none",
        # A helper works for a member who may have filled its volume with anything: bounded
        # so that it cannot take the host's processes or memory, and below workspaces for CPU.
        "pids_limit": HELPER_PIDS_LIMIT,
        "mem_limit": HELPER_MEMORY,
        "memswap_limit": HELPER_MEMORY,
        "cpu_shares": HELPER_CPU_SHARES,
        "log_config": LOG_CONFIG,
        "detach": True,
    }
    if job.stdin is not None:
        # docker-py sets StdinOnce (EOF on the container's stdin when dev8 closes its end)
        # only for a container created attached.
        spec.update(stdin_open=True, detach=False)
    return spec


def _mount(mount: HelperMount) -> dict[str, Any]:
    """A ``HostConfig.Mounts`` entry: unlike ``-v``, a missing host path is an error instead
    of an empty directory the engine creates, and any character is allowed in a path."""
    if (mount.volume is None) == (mount.host_path is None):
        raise ValueError(f"mount at {mount.target} needs exactly one of volume or host_path")
    entry: dict[str, Any] = {
        "Target": mount.target,
        "Source": mount.volume or mount.host_path,
        "Type": "volume" if mount.volume else "bind",
        "ReadOnly": mount.read_only,
    }
    if mount.volume:
        # An empty volume mounted over a path the image has would get the image's files
        # copied in; a helper must never change a volume by merely mounting it.
        entry["VolumeOptions"] = {"NoCopy": True}
    return entry


def summary_ports(ports: list[dict[str, Any]] | None) -> dict[str, int]:
    """Host ports by role, from a container list entry's ``Ports``."""
    by_container_port = {port: role for role, port in PORTS.items()}
    found: dict[str, int] = {}
    for entry in ports or []:
        role = by_container_port.get(int(entry.get("PrivatePort") or 0))
        if role and entry.get("PublicPort") and entry.get("IP") in ("127.0.0.1", "", None):
            found.setdefault(role, int(entry["PublicPort"]))
    return found
