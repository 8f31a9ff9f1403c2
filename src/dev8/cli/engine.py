"""`dev8 engine`: make a Docker engine available."""

from __future__ import annotations

import typer

from dev8.cli.output import console, err_console, step

app = typer.Typer(help="Manage the container engine dev8 runs workspaces on.", no_args_is_help=True)


@app.command()
def ensure() -> None:
    """Make sure a Docker engine answers, and that workspaces cannot reach this host.

    Does nothing when `docker info` already works. Otherwise, as root on Debian or Ubuntu,
    installs Debian's docker.io package if needed, starts dockerd in the background and waits
    until it answers. Anywhere else it tells you what to install.

    Then, as root, adds the host firewall rule (once) that drops connections from workspaces
    to this host's own services; without root it only warns.
    """
    from dev8.core.errors import Dev8Error
    from dev8.providers.docker.engine import ensure_engine
    from dev8.providers.docker.firewall import ensure_host_firewall

    console.print(f"[green]✓[/] {ensure_engine(step)}")
    try:
        console.print(f"[green]✓[/] {ensure_host_firewall()}", highlight=False)
    except Dev8Error as exc:
        err_console.print(f"[yellow]warning:[/] {exc}", highlight=False, soft_wrap=True)


@app.command("attach-quotas")
def attach_quotas() -> None:
    """Put every quota-enforced volume back on a loop device; needs no running engine.

    A reboot forgets loop devices, and the engine cannot mount those volumes until they are
    attached again. `dev8 engine ensure` and `dev8 server` do it when they start; where
    systemd starts the engine at boot, run this first, e.g. in a drop-in for docker.service:
    `ExecStartPre=-/path/to/dev8 engine attach-quotas` (with the same DEV8_HOME).
    """
    from dev8.providers.docker.loopquota import LoopVolumes, quota_directory

    names = LoopVolumes(quota_directory()).attach_directory()
    console.print(f"[green]✓[/] {len(names)} quota volume(s) attached", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="engine")
