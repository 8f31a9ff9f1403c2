"""Getting into workspaces: `dev8 ssh`, `exec`, `url`, `password`, `config-ssh`, and the
hidden `ssh-proxy` behind `ssh dev8.NAME`.

The same commands in both modes: how a stream reaches the workspace (loopback ports or the
server's tunnel) is the ``AccessBackend``'s business (``dev8.cli.context.access``)."""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from dev8.cli.context import access, local_only, workspaces
from dev8.cli.lifecycle import pin
from dev8.cli.options import NAME
from dev8.cli.output import console, err_console
from dev8.core.errors import Dev8Error
from dev8.core.states import ObservedState
from dev8.core.workspace import Workspace


def ensure_running(name: str) -> Workspace:
    """The workspace, started first (progress on stderr) unless its container is up and
    its agent answers (an unhealthy IDE does not keep SSH out)."""
    backend = workspaces()
    workspace = backend.get(name)
    if workspace.observed_state in (ObservedState.RUNNING, ObservedState.UNHEALTHY):
        return workspace
    tell(f"starting {name}...")
    return backend.start(name, progress=tell)


def tell(message: str) -> None:
    """One line on stderr (what ssh shows of its ProxyCommand)."""
    err_console.print(f"dev8: {message}", markup=False, highlight=False)


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
    """Open an SSH session to the workspace as dev8 (with your dev8 key, host key verified),
    starting it first if it is stopped. In server mode the session goes through the server."""
    from dev8.cli.ssh import dev8_argv, ssh_argv

    workspace = ensure_running(name)
    pin(workspace)
    destination = access().ssh_destination(workspace, dev8_argv())
    argv = ssh_argv(workspace.id, destination, command or [])
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def url(name: str = NAME) -> None:
    """Print the workspace's IDE address (in server mode: through the server)."""
    typer.echo(access().ide_url(name))


def password(name: str = NAME) -> None:
    """Print the password of the workspace's IDE."""
    typer.echo(workspaces().ide_password(name))


def config_ssh() -> None:
    """Write a `Host dev8.NAME` entry per workspace to an Include'd file and make
    ~/.ssh/config include it, so `ssh dev8.NAME`, scp, rsync and VS Code Remote-SSH work
    (in server mode through the server, from any machine that reaches it). Your own
    entries in ~/.ssh/config are never changed; rerun after creating workspaces."""
    from dev8.cli.ssh import HostEntry, authorized_keys, dev8_argv, write_ssh_config

    found = workspaces().records()
    for workspace in found:
        _pin_if_running(workspace)
    hosts_file, user_config = write_ssh_config(
        [HostEntry(ws.name, ws.id) for ws in found], dev8_argv()
    )
    if access().authorize_ssh_keys(authorized_keys()):
        console.print(
            "[green]✓[/] Your dev8 SSH key was added to your account (and to your running "
            "workspaces)"
        )
    console.print(f"[green]✓[/] {len(found)} host(s) in {hosts_file}, included from {user_config}")
    for ws in found:
        console.print(f"  ssh dev8.{ws.name}")


def _pin_if_running(workspace: Workspace) -> None:
    """Pin its host keys now if it runs (`dev8 ssh-proxy` pins them at each connection)."""
    if workspace.observed_state is not ObservedState.RUNNING:
        return
    with contextlib.suppress(Dev8Error):  # not answering now: the first connection pins them
        pin(workspace)


def ssh_proxy(name: str = NAME) -> None:
    """(Used by `ssh dev8.NAME`.) Start the workspace if needed, then relay SSH over stdio."""
    from dev8.cli.relay import relay_stdio

    workspace = ensure_running(name)
    pin(workspace)
    relay_stdio(access().ssh_stream(workspace))


def register(app: typer.Typer) -> None:
    for command in (ssh, url, password):
        app.command()(command)
    app.command("exec")(exec_)
    app.command("config-ssh")(config_ssh)
    app.command("ssh-proxy", hidden=True)(ssh_proxy)
