"""Workspaces are kept apart from each other and from the host's own services, and their
containers are confined: against the real engine, image, host firewall and Debian mirror.

A workspace's root is the attacker here: every probe runs inside workspace A as root.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev8.core.naming import container_name
from dev8.imagebuild.apt_sources import parse_deb822_sources, parse_one_line_sources
from dev8.providers.docker.firewall import (
    DROP_LINK_LOCAL_FROM_WORKSPACES,
    DROP_NEW_FROM_WORKSPACES,
)
from dev8.providers.docker.specs import network_name
from dev8.service.workspaces import CreateRequest, WorkspaceService
from tests.integration.helpers import ssh

NET_RAW = 13  # the capability's bit in /proc/<pid>/status
GREETING = b"dev8-host-service\n"

# Connects to each HOST:PORT argument at once (3 s each) and prints a JSON object of
# "open", "refused", "timeout" or the error, by argument.
PROBE = """
import json, socket, sys, threading
found = {}
def probe(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        found[target] = "open"
    except ConnectionRefusedError:
        found[target] = "refused"
    except socket.timeout:
        found[target] = "timeout"
    except OSError as exc:
        found[target] = str(exc)
threads = [threading.Thread(target=probe, args=(t,)) for t in sys.argv[1:]]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps(found))
"""


def probe_from(service: WorkspaceService, workspace_id: str, *targets: str) -> dict[str, str]:
    result = service.provider.exec(workspace_id, ["python3", "-c", PROBE, *targets], user="root")
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return json.loads(result.output)


def greeting_from_host(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=3) as conn:
        return conn.recv(64)


def address(client, workspace_id: str) -> tuple[str, str]:
    """The workspace container's address and its network's gateway."""
    attrs = client.containers.get(container_name(workspace_id)).attrs
    network = attrs["NetworkSettings"]["Networks"][network_name(workspace_id)]
    return network["IPAddress"], network["Gateway"]


@pytest.fixture
def host_service() -> Iterator[int]:
    """A TCP service on all the host's addresses (stands in for the dev8 server's port or
    PostgreSQL on the host): it greets whoever connects."""
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(GREETING)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def up(service: WorkspaceService, name: str):
    return service.up(CreateRequest(name=name))


def test_workspaces_reach_neither_each_other_nor_the_hosts_services(service, client, host_service):
    if os.geteuid() != 0:
        pytest.skip("the host firewall rule needs root to be installed")
    a, b = up(service, "isolated-a"), up(service, "isolated-b")
    a_address, a_gateway = address(client, a.id)
    b_address, b_gateway = address(client, b.id)
    assert a_gateway != b_gateway, "each workspace has its own network"
    b_ports = [f"{b_address}:{port}" for port in (9000, 8080, 2222)]
    for target in b_ports:  # B listens there: the probes below could succeed
        host, port = target.split(":")
        socket.create_connection((host, int(port)), timeout=3).close()
    assert greeting_from_host(a_gateway, host_service) == GREETING, "the host service answers"

    found = probe_from(service, a.id, f"{a_address}:9000", *b_ports, f"{a_gateway}:{host_service}")

    assert found.pop(f"{a_address}:9000") == "open", "the probe works inside A"
    assert "open" not in found.values(), found


def test_the_firewall_rule_is_in_place_once_a_workspace_network_exists(service):
    if os.geteuid() != 0:
        pytest.skip("the host firewall rule needs root to be installed")
    up(service, "firewalled")
    # The metadata rule is checked, never tried: that would send traffic off this machine.
    for rule in (DROP_NEW_FROM_WORKSPACES, DROP_LINK_LOCAL_FROM_WORKSPACES):
        check = subprocess.run(["iptables", "-w", "-C", *rule], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def host_mirror() -> str:
    """The Debian mirror of this host's apt sources, and a file every mirror serves."""
    sources = []
    for path in Path("/etc/apt").glob("sources.list*"):
        files = sorted(path.glob("*")) if path.is_dir() else [path]
        for file in files:
            text = file.read_text(errors="replace")
            if file.suffix == ".sources":
                sources += parse_deb822_sources(text)
            elif file.suffix == ".list" or file.name == "sources.list":
                sources += parse_one_line_sources(text)
    for source in sources:
        if source.uri.startswith("http") and source.suites:
            return f"{source.uri.rstrip('/')}/dists/{source.suites[0]}/InRelease"
    pytest.skip("this host's apt sources name no HTTP mirror")


def test_a_workspace_is_confined_but_keeps_what_it_needs(service, ssh_key):
    ws = up(service, "confined")
    root_status = service.provider.exec(ws.id, ["cat", "/proc/self/status"], user="root")
    capabilities = {
        line.split(":")[0]: int(line.split()[1], 16)
        for line in root_status.output.decode().splitlines()
        if line.startswith("Cap")
    }
    assert not capabilities["CapEff"] & (1 << NET_RAW)
    assert not capabilities["CapBnd"] & (1 << NET_RAW), "no process in it can ever get NET_RAW"
    pids_max = service.provider.exec(
        ws.id,
        ["sh", "-c", "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null"],
        user="root",
    )
    assert pids_max.output.split() == [b"4096"]
    memory = service.provider.exec(
        ws.id,
        [
            "sh",
            "-c",
            "cd /sys/fs/cgroup/memory 2>/dev/null && cat memory.limit_in_bytes "
            "memory.memsw.limit_in_bytes || cat /sys/fs/cgroup/memory.swap.max",
        ],
        user="root",
    )
    limits = memory.output.split()
    assert limits == [b"0"] or (len(limits) == 2 and limits[0] == limits[1]), limits

    # sshd's privilege separation and sudo still work with the smaller set.
    assert ssh(ws.ports["ssh"], ssh_key, "sudo -n id -u").stdout.strip() == b"0"
    # The workspace still reaches the package registry (outbound goes through FORWARD).
    mirror = service.provider.exec(
        ws.id, ["curl", "-fsS", "-o", "/dev/null", "-w", "%{http_code}", host_mirror()]
    )
    assert mirror.output == b"200", mirror.output.decode(errors="replace")
    update = service.provider.exec(ws.id, ["sudo", "-n", "apt-get", "update", "-q"])
    assert update.exit_code == 0, update.output.decode(errors="replace")[-2000:]
