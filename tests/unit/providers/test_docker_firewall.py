"""The host firewall rule's command lines, without running them."""

from __future__ import annotations

import pytest

from dev8.providers.docker.firewall import DROP_LINK_LOCAL_FROM_WORKSPACES, rule_argv
from dev8.providers.docker.specs import bridge_name

RULE = ["INPUT", "-i", "dev8-+", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]


def test_check_then_insert_the_same_rule():
    assert rule_argv("iptables", "-C") == ["iptables", "-w", "-C", *RULE]
    assert rule_argv("/usr/sbin/ip6tables", "-I") == ["/usr/sbin/ip6tables", "-w", "-I", *RULE]


def test_the_rule_matches_every_workspace_bridge():
    assert bridge_name("0123456789ab").startswith(RULE[2].rstrip("+"))


def test_only_check_and_insert():
    with pytest.raises(ValueError):
        rule_argv("iptables", "-D")


def test_the_metadata_rule_drops_link_local_from_every_workspace_bridge():
    argv = rule_argv("iptables", "-I", DROP_LINK_LOCAL_FROM_WORKSPACES)
    assert argv == [
        "iptables",
        "-w",
        "-I",
        "DOCKER-USER",
        "-i",
        "dev8-+",
        "-d",
        "169.254.0.0/16",
        "-j",
        "DROP",
    ]
