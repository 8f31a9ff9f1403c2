"""The host firewall rule that keeps workspaces away from this host's own services.

Docker keeps two bridge networks apart (its isolation chains in FORWARD), but a container
still reaches every service listening on the host through its gateway address (the dev8
server, PostgreSQL...): that traffic enters the host through INPUT, which Docker leaves
open. The rule drops NEW connections entering the host from any workspace bridge (they are
all named ``dev8-...``, see ``specs.bridge_name``). Replies to the host's own connections
(the published agent port, ``docker exec``) are not NEW and pass; a workspace's outbound
traffic (apt, pip, npm, DNS through Docker's resolver inside its own namespace) is routed
through FORWARD, which this rule does not touch.

The argv is built by pure functions; ``ensure_host_firewall`` runs them.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path

from dev8.core.errors import ProviderError
from dev8.providers.docker.specs import BRIDGE_PREFIX

log = logging.getLogger("dev8.docker")

WORKSPACE_BRIDGES = BRIDGE_PREFIX + "+"  # iptables' wildcard: every interface named dev8-...
DROP_NEW_FROM_WORKSPACES = (
    "INPUT",
    "-i",
    WORKSPACE_BRIDGES,
    "-m",
    "conntrack",
    "--ctstate",
    "NEW",
    "-j",
    "DROP",
)
# The cloud's instance metadata service (169.254.169.254 and the rest of link-local) hands
# out the host's own credentials: no workspace may ask it. Routed, so it is FORWARD's
# DOCKER-USER chain (which Docker keeps for rules like this), IPv4 only.
DROP_LINK_LOCAL_FROM_WORKSPACES = (
    "DOCKER-USER",
    "-i",
    WORKSPACE_BRIDGES,
    "-d",
    "169.254.0.0/16",
    "-j",
    "DROP",
)
IPV6_PRESENT = Path("/proc/net/if_inet6")  # absent when the kernel has no IPv6
FIX = "run `dev8 engine ensure` as root"


def rule_argv(
    binary: str, action: str, rule: tuple[str, ...] = DROP_NEW_FROM_WORKSPACES
) -> list[str]:
    """``binary`` (iptables or ip6tables) checking (``-C``) or inserting first (``-I``)
    ``rule``; ``-w`` waits for the xtables lock Docker also takes."""
    if action not in ("-C", "-I"):
        raise ValueError(f"unknown rule action {action!r}")
    return [binary, "-w", action, *rule]


def _ensure_rule(binary: str, rule: tuple[str, ...] = DROP_NEW_FROM_WORKSPACES) -> str:
    """Install ``rule`` with ``binary`` unless it is there; say which. Raises
    ``ProviderError`` when the tool is missing or refuses."""
    path = shutil.which(binary)
    if path is None:
        raise ProviderError(f"{binary} is not installed; install the iptables package")
    if subprocess.run(rule_argv(path, "-C", rule), capture_output=True).returncode == 0:
        return "present"
    inserted = subprocess.run(rule_argv(path, "-I", rule), capture_output=True, text=True)
    if inserted.returncode != 0:
        tail = (inserted.stderr or inserted.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ProviderError(f"`{binary} -I {rule[0]}` failed: {tail[0]}")
    return "installed"


def ensure_host_firewall() -> str:
    """Make sure the rule is in INPUT (IPv4, and IPv6 when the kernel has it); return a
    sentence saying what was done. ``ProviderError`` when the IPv4 rule cannot be had; an
    IPv6 failure is only reported (Docker gives workspace networks no IPv6)."""
    if os.geteuid() != 0:
        raise ProviderError(
            "cannot check the firewall rule that keeps workspaces away from this host's "
            f"services (not root); {FIX}"
        )
    done = [f"IPv4 {_ensure_rule('iptables')}"]
    try:
        done.append(f"metadata {_ensure_rule('iptables', DROP_LINK_LOCAL_FROM_WORKSPACES)}")
    except ProviderError as exc:  # no DOCKER-USER chain: an engine without iptables rules
        done.append(f"metadata skipped: {exc}")
    if IPV6_PRESENT.exists():
        try:
            done.append(f"IPv6 {_ensure_rule('ip6tables')}")
        except ProviderError as exc:
            done.append(f"IPv6 skipped: {exc}")
    return f"host firewall: workspaces cannot open connections to this host ({', '.join(done)})"


_checked = threading.Event()


def ensure_once() -> None:
    """What the provider calls before it makes a workspace network: the rule is ensured once
    per process; if that cannot be done, one warning is logged and workspaces still work."""
    if _checked.is_set():
        return
    _checked.set()
    try:
        log.info(ensure_host_firewall())
    except ProviderError as exc:
        log.warning("workspaces can reach this host's services: %s", exc)
