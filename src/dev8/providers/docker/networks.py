"""Each workspace's own bridge network: made before its container, removed after it.

Two workspaces are on two bridges, which Docker's isolation rules keep apart; the host
firewall (``firewall``) keeps them away from the host's own services.

The engine's default address pools hold about 30 networks, so workspace networks take small
subnets of their own pool (``DEV8_WORKSPACE_SUBNETS``, default 172.30.0.0/16, 4096 networks),
avoiding the subnets of other networks and of the host's routes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from contextlib import suppress
from ipaddress import IPv4Network, ip_network
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError
from docker.errors import NotFound as DockerNotFound

from dev8.core.errors import Conflict, InvalidInput
from dev8.core.naming import LABEL_WORKSPACE_ID
from dev8.providers.base import WorkspaceSpec
from dev8.providers.docker import firewall
from dev8.providers.docker.specs import network_name, network_spec

SUBNETS_VARIABLE = "DEV8_WORKSPACE_SUBNETS"
DEFAULT_SUBNETS = "172.30.0.0/16"
SUBNET_PREFIX = 28  # 13 addresses for the workspace's container (it needs one)
ATTEMPTS = 8  # other processes may take the subnet between our look and our create
ROUTES = Path("/proc/net/route")

_creating = threading.Lock()


def subnet_pool(environ: dict[str, str] | None = None) -> IPv4Network:
    text = (os.environ if environ is None else environ).get(SUBNETS_VARIABLE) or DEFAULT_SUBNETS
    try:
        pool = ip_network(text)
    except ValueError as exc:
        raise InvalidInput(f"{SUBNETS_VARIABLE}={text} is not an IPv4 network") from exc
    if not isinstance(pool, IPv4Network) or pool.prefixlen > SUBNET_PREFIX:
        raise InvalidInput(f"{SUBNETS_VARIABLE}={text} must be IPv4 and /{SUBNET_PREFIX} or wider")
    return pool


def free_subnet(pool: IPv4Network, taken: Iterable[IPv4Network]) -> IPv4Network | None:
    """The first /28 of ``pool`` that overlaps none of ``taken``; None when all do.

    Walks the taken ranges in order instead of testing every candidate against every
    network, so it stays fast with thousands of workspaces.
    """
    size = 2 ** (32 - SUBNET_PREFIX)
    start, end = int(pool.network_address), int(pool.broadcast_address)
    candidate = start
    ranges = sorted((int(n.network_address), int(n.broadcast_address)) for n in taken)
    for first, last in ranges:
        if last < candidate:
            continue
        if first > candidate + size - 1:
            break
        candidate = start + ((last + 1 - start + size - 1) // size) * size
    if candidate + size - 1 > end:
        return None
    return IPv4Network((candidate, SUBNET_PREFIX))


def host_routes(table: str) -> list[IPv4Network]:
    """The destinations of the host's routes, from ``/proc/net/route`` (little-endian hex),
    the default route left out."""
    found = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        destination = int.from_bytes(bytes.fromhex(fields[1]), "little")
        mask = int.from_bytes(bytes.fromhex(fields[7]), "little")
        if mask:
            found.append(IPv4Network((destination, bin(mask).count("1")), strict=False))
    return found


def network_subnets(attrs: Iterable[dict[str, Any]]) -> list[IPv4Network]:
    """The IPv4 subnets of the engine's networks, from their attributes."""
    found = []
    for network in attrs:
        for config in (network.get("IPAM") or {}).get("Config") or []:
            with suppress(ValueError, TypeError):
                subnet = ip_network(config.get("Subnet"), strict=False)
                if isinstance(subnet, IPv4Network):
                    found.append(subnet)
    return found


class WorkspaceNetworks:
    """Mixed into ``DockerProvider``: everything here works through ``self.client``."""

    client: docker.DockerClient
    subnets: IPv4Network

    def _ensure_network(self, spec: WorkspaceSpec) -> bool:
        """Create the workspace's network unless it exists; whether this call created it."""
        with _creating:
            if self._own_network(spec.workspace_id) is not None:
                return False
            firewall.ensure_once()
            refused: list[IPv4Network] = []
            for attempt in range(ATTEMPTS):
                subnet = self._free_subnet(refused)
                try:
                    self.client.networks.create(**network_spec(spec, subnet))
                    return True
                except APIError as exc:
                    if self._own_network(spec.workspace_id) is not None:
                        return False  # another dev8 process made it meanwhile
                    if attempt == ATTEMPTS - 1 or subnet is None or not _overlaps(exc):
                        raise
                    # Another process is creating a network on it: the engine holds the
                    # subnet before the network shows in its list.
                    refused.append(subnet)
        return False  # not reached: the last attempt returns or raises

    def _own_network(self, workspace_id: str) -> Any:
        try:
            network = self.client.networks.get(network_name(workspace_id))
        except DockerNotFound:
            return None
        if (network.attrs.get("Labels") or {}).get(LABEL_WORKSPACE_ID) != workspace_id:
            raise Conflict(
                f"network {network.name} exists but is not labelled as belonging to "
                f"workspace {workspace_id}"
            )
        return network

    def _free_subnet(self, refused: list[IPv4Network]) -> IPv4Network | None:
        taken = network_subnets(n.attrs for n in self.client.networks.list()) + refused
        with suppress(OSError):
            taken += host_routes(ROUTES.read_text())
        # None: the pool is full, and the engine's own pools are the last resort.
        return free_subnet(self.subnets, taken)

    def _remove_network(self, workspace_id: str) -> None:
        """Remove the workspace's network; missing, or still used by another container
        (someone attached one by hand): left alone, no error."""
        try:
            network = self.client.networks.get(network_name(workspace_id))
        except DockerNotFound:
            return
        if (network.attrs.get("Labels") or {}).get(LABEL_WORKSPACE_ID) != workspace_id:
            return
        try:
            network.remove()
        except DockerNotFound:
            return
        except APIError as exc:
            if not _in_use(exc):
                raise


def _explanation(exc: APIError) -> str:
    return str(exc.explanation or exc).lower()


def _overlaps(exc: APIError) -> bool:
    return "overlap" in _explanation(exc)


def _in_use(exc: APIError) -> bool:
    return "active endpoints" in _explanation(exc)
