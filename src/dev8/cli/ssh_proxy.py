"""`ssh dev8.NAME` through a server, the quick way.

ssh runs its ProxyCommand, `dev8 ssh-proxy NAME`, at every connection: every scp, every git
push, every VS Code reconnect. The full command line costs about 0.4 s of imports (Typer,
Rich, httpx) before it relays a byte. When the workspace's host keys are already pinned under
the alias `dev8 config-ssh` gave it, the proxy needs only the saved login and one tunnel,
opened with the standard library and websockets. Everything else (local mode, keys not pinned
yet, a stopped workspace, a refused tunnel) takes the full way, which starts the workspace,
pins its keys and explains any failure in one line.
"""

from __future__ import annotations

from dev8.cli.login import saved_login
from dev8.cli.ssh import known_hosts_path, ssh_dir
from dev8.core.errors import Dev8Error
from dev8.providers.base import PORTS


def host_key_alias(hosts_file: str, name: str) -> str | None:
    """The ``HostKeyAlias`` of ``Host dev8.NAME`` in the file `dev8 config-ssh` writes. Pure."""
    in_entry = False
    for line in hosts_file.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "Host":
            in_entry = value.strip() == f"dev8.{name}"
        elif in_entry and key == "HostKeyAlias":
            return value.strip() or None
    return None


def has_keys_for(known_hosts: str, alias: str) -> bool:
    """Whether ``known_hosts`` pins any key for ``alias``. Pure."""
    return any(line.split(" ", 1)[0] == alias for line in known_hosts.splitlines())


def relay_if_pinned(name: str) -> bool:
    """Relay stdio to sshd in ``name`` if the quick way applies; ``False`` if it does not and
    nothing was read or written (the caller then takes the full way)."""
    login = saved_login()
    if login is None:
        return False
    try:
        alias = host_key_alias((ssh_dir() / "config").read_text(), name)
        if alias is None or not has_keys_for(known_hosts_path().read_text(), alias):
            return False
    except OSError:
        return False
    from dev8.cli.relay import relay_stdio
    from dev8.client.tls import tls_context
    from dev8.client.tunnel import connect_tunnel

    try:
        tunnel = connect_tunnel(login.url, login.token, tls_context(), name, PORTS["ssh"])
    except Dev8Error:
        return False  # stopped, gone, or refused: the full way says which, or starts it
    relay_stdio(tunnel)
    return True
