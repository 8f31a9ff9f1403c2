"""Choosing a workspace network's subnet, without an engine."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from dev8.core.errors import InvalidInput
from dev8.providers.docker.networks import (
    free_subnet,
    host_routes,
    network_subnets,
    subnet_pool,
)

POOL = IPv4Network("172.30.0.0/16")


def test_the_first_subnet_of_an_empty_pool():
    assert free_subnet(POOL, []) == IPv4Network("172.30.0.0/28")


def test_subnets_taken_by_networks_or_routes_are_skipped():
    taken = [IPv4Network("172.30.0.0/28"), IPv4Network("172.30.0.16/28"), IPv4Network("10.0.0.0/8")]
    assert free_subnet(POOL, taken) == IPv4Network("172.30.0.32/28")


def test_a_hole_between_taken_subnets_is_used():
    taken = [IPv4Network("172.30.0.32/28"), IPv4Network("172.30.0.0/28")]
    assert free_subnet(POOL, taken) == IPv4Network("172.30.0.16/28")


def test_a_wider_network_inside_the_pool_is_stepped_over():
    taken = [IPv4Network("172.30.0.0/24"), IPv4Network("172.30.1.0/26")]
    assert free_subnet(POOL, taken) == IPv4Network("172.30.1.64/28")


def test_a_full_pool_gives_none():
    assert (
        free_subnet(
            IPv4Network("172.30.0.0/27"),
            [IPv4Network("172.30.0.0/28"), IPv4Network("172.30.0.16/28")],
        )
        is None
    )
    assert free_subnet(POOL, [IPv4Network("172.16.0.0/12")]) is None


def test_thousands_of_workspaces():
    taken = list(POOL.subnets(new_prefix=28))[:4000]
    assert free_subnet(POOL, reversed(taken)) == IPv4Network("172.30.250.0/28")


def test_host_routes_from_proc_net_route():
    table = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
    )
    assert host_routes(table) == [IPv4Network("10.0.0.0/16"), IPv4Network("172.17.0.0/16")]


def test_the_subnets_of_the_engines_networks():
    attrs = [
        {"IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]}},
        {"IPAM": {"Config": [{"Subnet": "fd00::/64"}]}},
        {"IPAM": {"Config": None}},
        {},
    ]
    assert network_subnets(attrs) == [IPv4Network("172.17.0.0/16")]


def test_the_pool_can_be_chosen():
    assert subnet_pool({}) == POOL
    assert subnet_pool({"DEV8_WORKSPACE_SUBNETS": "10.99.0.0/20"}) == IPv4Network("10.99.0.0/20")
    for bad in ("nonsense", "fd00::/64", "10.0.0.0/30"):
        with pytest.raises(InvalidInput, match="DEV8_WORKSPACE_SUBNETS"):
            subnet_pool({"DEV8_WORKSPACE_SUBNETS": bad})


class _Networks:
    """Stands in for docker-py's network collection: the engine refuses the first
    ``busy`` subnets as another process's (held, but not listed yet)."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.tried: list[str] = []

    def get(self, name):
        from docker.errors import NotFound

        raise NotFound(f"no network {name}")

    def list(self):
        return []

    def create(self, **spec):
        from docker.errors import APIError

        self.tried.append(spec["ipam"]["Config"][0]["Subnet"])
        if len(self.tried) <= self.busy:
            raise APIError("403", explanation="Pool overlaps with other one on this address space")


def _networks_of(busy: int):
    from types import SimpleNamespace

    from dev8.providers.docker.networks import WorkspaceNetworks

    holder = WorkspaceNetworks()
    holder.client = SimpleNamespace(networks=_Networks(busy))  # type: ignore[assignment]
    holder.subnets = POOL
    return holder


def test_a_subnet_another_process_is_taking_is_not_tried_again(monkeypatch):
    from tests.unit.providers.test_docker_specs import SPEC

    from dev8.providers.docker import firewall, networks

    monkeypatch.setattr(firewall, "ensure_once", lambda: None)
    monkeypatch.setattr(networks, "ROUTES", networks.Path("/nonexistent"))
    holder = _networks_of(busy=2)
    assert holder._ensure_network(SPEC) is True
    assert holder.client.networks.tried == ["172.30.0.0/28", "172.30.0.16/28", "172.30.0.32/28"]


def test_the_engine_keeps_refusing_then_the_error_is_raised(monkeypatch):
    from docker.errors import APIError
    from tests.unit.providers.test_docker_specs import SPEC

    from dev8.providers.docker import firewall, networks

    monkeypatch.setattr(firewall, "ensure_once", lambda: None)
    holder = _networks_of(busy=100)
    with pytest.raises(APIError, match="overlaps"):
        holder._ensure_network(SPEC)
    assert len(holder.client.networks.tried) == networks.ATTEMPTS
