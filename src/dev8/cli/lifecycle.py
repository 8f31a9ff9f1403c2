"""Changing workspaces: `dev8 up`, `create`, `start`, `stop`, `restart`, `rebuild`, `rm`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import typer

from dev8.cli.context import workspaces
from dev8.cli.options import (
    CPUS_OPT,
    DOTFILES_OPT,
    ENV_OPT,
    HOME_QUOTA_OPT,
    IDE_PORT_OPT,
    IDLE_OPT,
    IMAGE_OPT,
    MEMORY_OPT,
    NAME,
    SECRET_OPT,
    SIZE_OPT,
    SSH_PORT_OPT,
    WORKSPACE_QUOTA_OPT,
    CreateOptions,
)
from dev8.cli.output import console, err_console, spinner, took
from dev8.core.errors import InvalidInput
from dev8.core.workspace import Workspace

UP_HELP = """Create the workspace if needed, start it, wait until it is healthy, and print how to
reach it. The everyday command: safe to run again at any time."""
CREATE_HELP = "Create a workspace (volumes and container) without starting it."


def print_access(workspace: Workspace) -> None:
    name = workspace.name
    console.print(
        f"  [bold]IDE[/]       {workspace.ide_url}   [dim](password: `dev8 password {name}`)[/]"
    )
    console.print(
        f"  [bold]SSH[/]       dev8 ssh {name}   "
        f"[dim](or `ssh dev8.{name}` after `dev8 config-ssh`)[/]"
    )
    console.print(f"  [bold]Status[/]    dev8 status {name}")


def pin(workspace: Workspace) -> None:
    """Remember the workspace's SSH host keys, as reported by its agent."""
    from dev8.cli.ssh import pin_host_keys

    status = workspaces().agent_status_of(workspace)
    pin_host_keys(workspace.id, status.get("ssh_host_keys") or [])


def _up(options: CreateOptions) -> None:
    request = options.request()
    started = time.monotonic()
    with spinner(f"Bringing up {options.name}") as progress:
        workspace = workspaces().up(request, progress)
    pin(workspace)
    console.print(f"[green]✓[/] Workspace [bold]{options.name}[/] is running {took(started)}")
    print_access(workspace)


def _create(options: CreateOptions) -> None:
    request = options.request()
    name = options.name
    with spinner(f"Creating {name}") as progress:
        workspace = workspaces().create(request, progress)
    console.print(
        f"[green]✓[/] Created [bold]{name}[/] ({workspace.id}); start it with `dev8 start {name}`"
    )


def _create_command(start: bool) -> Callable[..., None]:
    """`dev8 up` (``start``) or `dev8 create`: the same options, one signature."""

    def command(
        name: str = NAME,
        image: str | None = IMAGE_OPT,
        size: str | None = SIZE_OPT,
        cpus: str | None = CPUS_OPT,
        memory: str | None = MEMORY_OPT,
        env: list[str] = ENV_OPT,
        secret: list[str] = SECRET_OPT,
        ide_port: int | None = IDE_PORT_OPT,
        ssh_port: int | None = SSH_PORT_OPT,
        home_quota: str | None = HOME_QUOTA_OPT,
        workspace_quota: str | None = WORKSPACE_QUOTA_OPT,
        idle_timeout: str | None = IDLE_OPT,
        dotfiles: str | None = DOTFILES_OPT,
    ) -> None:
        options = CreateOptions(
            name,
            image,
            size,
            cpus,
            memory,
            tuple(env),
            tuple(secret),
            ide_port,
            ssh_port,
            home_quota,
            workspace_quota,
            idle_timeout,
            dotfiles,
        )
        (_up if start else _create)(options)

    command.__name__ = "up" if start else "create"
    command.__doc__ = UP_HELP if start else CREATE_HELP
    return command


up = _create_command(start=True)
create = _create_command(start=False)


def start(
    name: str = NAME,
    no_wait: bool = typer.Option(
        False, "--no-wait", help="Return once the container runs, without waiting for health."
    ),
) -> None:
    """Start a stopped workspace and wait until it is healthy."""
    started = time.monotonic()
    with spinner(f"Starting {name}") as progress:
        workspace = workspaces().start(name, progress, wait=not no_wait)
    if not no_wait:
        pin(workspace)
    console.print(f"[green]✓[/] {name} is {workspace.observed_state.value} {took(started)}")
    print_access(workspace)


def stop(name: str = NAME) -> None:
    """Stop a workspace. Files, installed packages and settings are kept."""
    with spinner(f"Stopping {name}") as progress:
        workspaces().stop(name, progress)
    console.print(f"[green]✓[/] {name} is stopped")


def restart(name: str = NAME) -> None:
    """Restart a workspace's container and wait until it is healthy."""
    started = time.monotonic()
    with spinner(f"Restarting {name}") as progress:
        workspaces().restart(name, progress)
    console.print(f"[green]✓[/] {name} restarted {took(started)}")


def rebuild(
    name: str = NAME,
    image: str | None = typer.Option(
        None, "--image", help="New image (default: the workspace's image, resolved again)."
    ),
) -> None:
    """Replace the container with a new one from the image, on the same volumes: /home/dev8,
    /workspace and the system volume (SSH host keys) are kept."""
    from dev8.core.images import short_image_id

    started = time.monotonic()
    with spinner(f"Rebuilding {name}") as progress:
        workspace = workspaces().rebuild(name, image, progress)
    pin(workspace)
    console.print(
        f"[green]✓[/] {name} rebuilt on {workspace.image_ref} "
        f"({short_image_id(workspace.image_id)}) {took(started)}"
    )


def rm(
    name: str = NAME,
    purge: bool = typer.Option(False, "--purge", help="Also destroy the volumes (all data)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a workspace's container. Its volumes survive, and `dev8 up NAME` brings it back
    on them; with --purge the volumes are destroyed too, after confirmation."""
    backend = workspaces()
    if purge and not yes:
        _confirm_purge(name, backend.volume_names(name))
    destroyed = backend.remove(name, purge=purge)
    if purge:
        console.print(
            f"[green]✓[/] Removed {name} and destroyed {len(destroyed)} volume(s)"
            + (f": {', '.join(destroyed)}" if destroyed else "")
        )
    else:
        console.print(
            f"[green]✓[/] Removed {name}'s container; its volumes are kept "
            f"(`dev8 up {name}` brings it back, `dev8 rm --purge {name}` destroys them)"
        )


def _confirm_purge(name: str, volumes: list[str]) -> None:
    if not sys.stdin.isatty():
        raise InvalidInput("--purge destroys data; confirm with --yes when not on a terminal")
    err_console.print(
        f"This destroys all data of [bold]{name}[/]: " + (", ".join(volumes) or "no volumes found")
    )
    typer.confirm("Destroy these volumes?", abort=True)


def register(app: typer.Typer) -> None:
    for command in (up, create, start, stop, restart, rebuild, rm):
        app.command(command.__name__)(command)
