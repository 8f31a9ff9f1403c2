"""Entry point of the `dev8` command: sub-command wiring and the single error boundary."""

from __future__ import annotations

import os
import sys

import typer

from dev8 import __version__
from dev8.cli import backups, doctor, engine, image, server, snapshots, volumes, workspaces
from dev8.cli.output import error_line
from dev8.core.errors import Dev8Error

app = typer.Typer(
    help="dev8: persistent cloud development workspaces (VS Code in the browser, SSH, "
    "and data that survives restarts and rebuilds).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(engine.app, name="engine")
app.add_typer(image.app, name="image")
workspaces.register(app)
backups.register(app)
snapshots.register(app)
volumes.register(app)
doctor.register(app)
server.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dev8 {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    if debug:
        os.environ["DEV8_DEBUG"] = "1"


def run() -> None:
    """Run the CLI. Every ``Dev8Error`` becomes one red line and exit code 1; an unexpected
    exception becomes one line too, with the traceback available through ``--debug``."""
    try:
        app()
    except Dev8Error as exc:
        if os.environ.get("DEV8_DEBUG"):
            raise
        error_line(exc.message)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("DEV8_DEBUG"):
            raise
        error_line(f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)")
        sys.exit(2)
