"""The host side of SSH: dev8's client key, pinned host keys, and `dev8 config-ssh`.

Host keys are pinned per workspace id (``HostKeyAlias dev8-<id>``) from what the agent
reports over its authenticated status endpoint, so the first connection is verified too and
the engine-chosen port can change between starts without any "host key changed" warning.

Paths go into ssh's configuration quoted and with ``%`` doubled (ssh expands ``%`` tokens in
them), so a data directory or a dev8 installed under a path with spaces works; the
ProxyCommand is quoted for the shell ssh runs it with.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dev8.paths import data_dir

BEGIN_MARK = "# >>> dev8 (managed by `dev8 config-ssh`; edit outside this block) >>>"
END_MARK = "# <<< dev8 <<<"
USER_KEY_NAMES = ("id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub")
# A relayed session goes through the server: ask sshd every 15 s, give up after a minute
# of silence (and keep idle proxies from dropping the connection).
KEEPALIVES = (("ServerAliveInterval", "15"), ("ServerAliveCountMax", "4"))


def ssh_dir() -> Path:
    path = data_dir() / "ssh"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def client_key() -> Path:
    """dev8's own client key, generated on first use."""
    key = ssh_dir() / "id_ed25519"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dev8-client", "-f", str(key)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    return key


def authorized_keys(user_ssh_dir: Path | None = None) -> str:
    """dev8's public key plus the user's usual public keys, one per line."""
    user_ssh_dir = user_ssh_dir or Path.home() / ".ssh"
    keys = [client_key().with_suffix(".pub").read_text().strip()]
    for name in USER_KEY_NAMES:
        path = user_ssh_dir / name
        if path.is_file():
            keys.append(path.read_text().strip())
    return "\n".join(key for key in keys if key)


def host_alias(workspace_id: str) -> str:
    return f"dev8-{workspace_id}"


def known_hosts_path() -> Path:
    return ssh_dir() / "known_hosts"


def render_known_hosts(existing: str, alias: str, keys: Iterable[str]) -> str:
    """``existing`` with the lines for ``alias`` replaced by ``keys``. Pure."""
    kept = [line for line in existing.splitlines() if line.split(" ", 1)[0] != alias]
    return "".join(f"{line}\n" for line in [*kept, *(f"{alias} {key}" for key in keys)])


def pin_host_keys(workspace_id: str, keys: Sequence[str]) -> None:
    if not keys:
        return
    path = known_hosts_path()
    existing = path.read_text() if path.exists() else ""
    updated = render_known_hosts(existing, host_alias(workspace_id), keys)
    if updated != existing:
        _atomic_write(path, updated, 0o600)


def config_path(path: Path, tokens: bool = True) -> str:
    """``path`` as a value of ssh's configuration: quoted if it has spaces, and ``%``
    doubled for an option in which ssh expands ``%`` tokens (not ``Include``). Pure."""
    text = str(path).replace("%", "%%") if tokens else str(path)
    return f'"{text}"' if any(c.isspace() for c in text) else text


def dev8_argv() -> list[str]:
    """How to run this dev8 from another process (ssh's ProxyCommand)."""
    found = shutil.which("dev8")
    return [found] if found else [sys.executable, "-m", "dev8"]


def proxy_command(dev8: Sequence[str], name: str) -> str:
    """The ProxyCommand that relays ssh to ``name``: quoted for the shell ssh runs it
    with, ``%`` doubled for ssh's own expansion. Pure."""
    return shlex.join([*dev8, "ssh-proxy", name]).replace("%", "%%")


def ssh_options(workspace_id: str) -> list[str]:
    options = {
        "IdentityFile": config_path(client_key()),
        "IdentitiesOnly": "yes",
        "HostKeyAlias": host_alias(workspace_id),
        "UserKnownHostsFile": config_path(known_hosts_path()),
        "StrictHostKeyChecking": "yes",
        **dict(KEEPALIVES),
    }
    return [argument for item in options.items() for argument in ("-o", "=".join(item))]


def ssh_argv(workspace_id: str, destination: Sequence[str], command: Sequence[str]) -> list[str]:
    """``ssh`` to the workspace, ``destination`` being how to reach its sshd (the
    backend's ``ssh_destination``); a terminal unless a ``command`` is given."""
    argv = ["ssh", *ssh_options(workspace_id)]
    if not command:
        argv.append("-t")
    return [*argv, *destination, *command]


@dataclass(frozen=True)
class HostEntry:
    name: str
    workspace_id: str


def render_hosts_file(
    entries: Sequence[HostEntry], dev8: Sequence[str], key: Path, known_hosts: Path
) -> str:
    """The ``Include``d file: one ``Host dev8.NAME`` per workspace, reached through
    ``dev8 ssh-proxy NAME`` (``dev8`` is how to run dev8). Pure."""
    lines = ["# Written by `dev8 config-ssh`; rerun it to update. Do not edit.", ""]
    for entry in entries:
        lines += [
            f"Host dev8.{entry.name}",
            "  User dev8",
            "  HostName 127.0.0.1",
            f"  ProxyCommand {proxy_command(dev8, entry.name)}",
            f"  IdentityFile {config_path(key)}",
            "  IdentitiesOnly yes",
            f"  HostKeyAlias {host_alias(entry.workspace_id)}",
            f"  UserKnownHostsFile {config_path(known_hosts)}",
            "  StrictHostKeyChecking yes",
            *(f"  {option} {value}" for option, value in KEEPALIVES),
            "",
        ]
    return "\n".join(lines)


def render_user_config(existing: str, include_path: Path) -> str:
    """The user's ~/.ssh/config with the managed block at the top (an ``Include`` only
    applies to every host when it comes before the first ``Host``). Everything outside the
    block is kept byte for byte. Pure."""
    block = f"{BEGIN_MARK}\nInclude {config_path(include_path, tokens=False)}\n{END_MARK}\n"
    if BEGIN_MARK in existing and END_MARK in existing:
        head, _, rest = existing.partition(BEGIN_MARK)
        _, _, tail = rest.partition(END_MARK)
        tail = tail[1:] if tail.startswith("\n") else tail
        return head + block + tail
    separator = "\n" if existing and not existing.startswith("\n") else ""
    return block + separator + existing


def write_ssh_config(
    entries: Sequence[HostEntry], dev8: Sequence[str], user_config: Path | None = None
) -> tuple[Path, Path]:
    """Write the hosts file and make ~/.ssh/config include it; returns both paths."""
    hosts_file = ssh_dir() / "config"
    _atomic_write(
        hosts_file,
        render_hosts_file(entries, dev8, client_key(), known_hosts_path()),
        0o600,
    )
    user_config = user_config or Path.home() / ".ssh" / "config"
    user_config.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    user_config = user_config.resolve()  # keep a dotfile manager's symlink intact
    existing = user_config.read_text() if user_config.exists() else ""
    updated = render_user_config(existing, hosts_file)
    if updated != existing:
        _atomic_write(user_config, updated, 0o600)
    return hosts_file, user_config


def _atomic_write(path: Path, text: str, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.dev8-tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)
