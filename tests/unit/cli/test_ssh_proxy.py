"""The quick way of `dev8 ssh-proxy`: when it applies, and that it imports no heavy library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dev8.cli.ssh import HostEntry, render_hosts_file
from dev8.cli.ssh_proxy import has_keys_for, host_key_alias


def _hosts(*entries: HostEntry) -> str:
    return render_hosts_file(entries, ["dev8"], Path("/k/id"), Path("/k/known_hosts"))


def test_the_alias_is_read_from_the_entry_config_ssh_writes():
    text = _hosts(HostEntry("web", "abc123"), HostEntry("api", "def456"))
    assert host_key_alias(text, "web") == "dev8-abc123"
    assert host_key_alias(text, "api") == "dev8-def456"


def test_a_workspace_without_an_entry_has_no_alias():
    text = _hosts(HostEntry("web", "abc123"))
    assert host_key_alias(text, "we") is None
    assert host_key_alias(text, "web2") is None
    assert host_key_alias("", "web") is None


def test_keys_count_only_for_their_own_alias():
    known = "dev8-abc123 ssh-ed25519 AAAA\ndev8-abc1234 ssh-ed25519 BBBB\n"
    assert has_keys_for(known, "dev8-abc123")
    assert has_keys_for(known, "dev8-abc1234")
    assert not has_keys_for(known, "dev8-abc12")
    assert not has_keys_for("", "dev8-abc123")


def test_the_quick_way_imports_no_http_client_nor_the_cli_framework():
    """ssh runs the ProxyCommand at every connection: each import is paid each time."""
    code = (
        "import sys; import dev8.cli.ssh_proxy, dev8.cli.relay, dev8.client.tunnel, "
        "dev8.client.tls; "
        "print(','.join(m for m in ('httpx', 'typer', 'rich', 'sqlalchemy', 'docker') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
