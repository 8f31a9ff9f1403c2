"""Getting into workspaces: `dev8 ssh`, `exec`, `url`, `password`, `config-ssh`, and the
hidden `ssh-proxy` behind `ssh dev8.NAME`."""

from __future__ import annotations

import os
import shutil
import sys

import typer

from dev8.cli.context import local_only, workspaces
from dev8.cli.lifecycle import pin
from dev8.cli.options import NAME
from dev8.cli.output import console, err_console
from dev8.core.states import ObservedState
from dev8.core.workspace import Workspace


def _live(name: str) -> Workspace:
    """The workspace observed now; ``Conflict`` unless its container is up."""
    from dev8.service.workspaces import require_live

    workspace = workspaces().get(name)
    require_live(workspace)
    return workspace


def exec_(
    name: str = NAME,
    command: list[str] = typer.Argument(..., help="Command and arguments, after --."),
    root: bool = typer.Option(False, "--root", help="Run as root instead of dev8."),
) -> None:
    """Run a command in the workspace as dev8 (in /workspace), e.g. `dev8 exec NAME -- ls -la`.
    The exit code is the command's. Local mode only (in server mode: `dev8 ssh NAME -- CMD`)."""
    service = local_only("exec", "use `dev8 ssh NAME -- CMD`")
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    argv = service.exec_argv(name, command, root=root, tty=tty)
    if argv:
        sys.stdout.flush()
        os.execv(argv[0], argv)
    result = service.exec(name, command, root=root)
    sys.stdout.buffer.write(result.output)
    raise typer.Exit(result.exit_code)


def ssh(
    name: str = NAME,
    command: list[str] | None = typer.Argument(
        None, help="Command to run instead of a shell, after --."
    ),
) -> None:
    """Open an SSH session to the workspace as dev8 (with your dev8 key, host key verified)."""
    from dev8.cli.ssh import ssh_argv

    workspace = _live(name)
    pin(workspace)
    argv = ssh_argv(workspace.id, workspace.ports["ssh"], command or [])
    os.execvp(argv[0], argv)


def url(name: str = NAME) -> None:
    """Print the workspace's IDE address (code-server)."""
    typer.echo(_live(name).ide_url)


def password(name: str = NAME) -> None:
    """Print the password of the workspace's IDE."""
    typer.echo(workspaces().ide_password(name))


def config_ssh() -> None:
    """Write a `Host dev8.NAME` entry per workspace to an Include'd file and make
    ~/.ssh/config include it, so `ssh dev8.NAME` and VS Code Remote-SSH work. Your own
    entries in ~/.ssh/config are never changed; rerun after creating workspaces."""
    from dev8.cli.ssh import HostEntry, write_ssh_config

    found = workspaces().records()
    dev8_command = shutil.which("dev8") or f"{sys.executable} -m dev8"
    hosts_file, user_config = write_ssh_config(
        [HostEntry(ws.name, ws.id) for ws in found], dev8_command
    )
    console.print(f"[green]✓[/] {len(found)} host(s) in {hosts_file}, included from {user_config}")
    for ws in found:
        console.print(f"  ssh dev8.{ws.name}")


def ssh_proxy(name: str = NAME) -> None:
    """(Used by `ssh dev8.NAME`.) Start the workspace if needed, then relay SSH over stdio."""
    from dev8.cli.relay import relay_stdio

    backend = workspaces()
    workspace = backend.get(name)
    if workspace.observed_state is not ObservedState.RUNNING:
        err_console.print(f"dev8: starting {name}...")
        workspace = backend.start(name)
    pin(workspace)
    relay_stdio("127.0.0.1", workspace.ports["ssh"])


def register(app: typer.Typer) -> None:
    for command in (ssh, url, password):
        app.command()(command)
    app.command("exec")(exec_)
    app.command("config-ssh")(config_ssh)
    app.command("ssh-proxy", hidden=True)(ssh_proxy)
