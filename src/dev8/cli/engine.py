"""`dev8 engine`: make a Docker engine available."""

from __future__ import annotations

import typer

from dev8.cli.output import console, step

app = typer.Typer(help="Manage the container engine dev8 runs workspaces on.", no_args_is_help=True)


@app.command()
def ensure() -> None:
    """Make sure a Docker engine answers.

    Does nothing when `docker info` already works. Otherwise, as root on Debian or Ubuntu,
    installs Debian's docker.io package if needed, starts dockerd in the background and waits
    until it answers. Anywhere else it tells you what to install.
    """
    from dev8.providers.docker.engine import ensure_engine

    console.print(f"[green]✓[/] {ensure_engine(step)}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="engine")
