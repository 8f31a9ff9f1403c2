"""Entry point of the `dev8` command: which module serves each sub-command, and the single
error boundary.

A command imports only its own module: `dev8 ls` loads neither the backup code nor the
server's, and `dev8 --version` and `dev8 --help` load neither Typer nor Rich. The top-level
help is written from ``GROUPS`` below; ``tests/unit/cli`` checks it lists exactly the
commands the modules register.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from dev8 import __version__
from dev8.cli.warm import WARM_COMMANDS

if TYPE_CHECKING:
    import typer

SUMMARY = (
    "dev8: persistent cloud development workspaces (VS Code in the browser, SSH, and data "
    "that survives restarts and rebuilds)."
)

# Help panel -> module -> {command: one line of help}. Order is the order shown.
GROUPS: dict[str, dict[str, dict[str, str]]] = {
    "Workspaces": {
        "lifecycle": {
            "up": "Create if needed, start, wait until healthy (the everyday one)",
            "create": "Create a workspace without starting it",
            "start": "Start a stopped workspace",
            "stop": "Stop a workspace; its files and settings are kept",
            "restart": "Restart a workspace's container",
            "rebuild": "A new container from the image, on the same volumes",
            "rm": "Remove the container (--purge: the volumes too)",
        },
        "inspect": {
            "ls": "List your workspaces",
            "status": "A workspace's state, ports, resources and services",
            "history": "The operations on a workspace",
            "logs": "The workspace's output",
            "packages": "The apt packages that come back after a rebuild",
        },
        "access": {
            "ssh": "Open an SSH session (or run a command over SSH)",
            "exec": "Run a command in the workspace",
            "url": "Print the IDE's address",
            "password": "Print the IDE's password",
            "config-ssh": "Let `ssh dev8.NAME` and VS Code Remote-SSH work",
        },
        "forward": {"port-forward": "Forward local ports to ports in a workspace"},
    },
    "Data": {
        "backups": {
            "backup": "Back up volumes into archives",
            "backups": "The backups a dev8 server keeps",
            "restore": "Restore volumes from archives",
            "verify": "Check an archive without writing anything",
        },
        "snapshots": {"snapshot": "Incremental snapshots (restic)"},
        "volumes": {
            "volume": "List and inspect dev8's volumes",
            "du": "What uses the space in a workspace",
            "quota": "Show or change a workspace's volume limits",
            "clean": "Empty the package managers' caches",
        },
    },
    "Setup": {
        "doctor": {"doctor": "Troubleshooting checks, with a fix for each"},
        "engine": {"engine": "Make a container engine available"},
        "image": {"image": "Build and inspect the workspace image"},
    },
    "Server": {
        "server": {
            "server": "Run the dev8 server",
            "login": "Send every command to a dev8 server",
            "logout": "Back to local mode",
            "user": "Users of the server",
            "token": "Your API tokens",
            "audit": "The server's audit log",
        },
    },
}
MODULES = {
    command: module
    for group in GROUPS.values()
    for module, commands in group.items()
    for command in commands
}
HIDDEN = {"ssh-proxy": "access"}
OPTIONS = {
    "--debug": "Show tracebacks for errors.",
    "--version": "Print the version and exit.",
    "--install-completion": "Install completion for the current shell.",
    "--show-completion": "Show completion for the current shell.",
    "--help": "Show this message and exit.",
}


def top_help() -> str:
    """`dev8 --help`, without loading any command."""
    import textwrap

    lines = ["Usage: dev8 [OPTIONS] COMMAND [ARGS]...", "", textwrap.fill(SUMMARY, 79), ""]
    lines.append("Options:")
    lines += [f"  {option:<22}{text}" for option, text in OPTIONS.items()]
    for title, modules in GROUPS.items():
        lines += ["", f"{title}:"]
        lines += [
            f"  {command:<14}{text}"
            for commands in modules.values()
            for command, text in commands.items()
        ]
    lines += ["", "`dev8 COMMAND --help` shows a command's options."]
    return "\n".join(lines) + "\n"


def _command_of(argv: list[str]) -> str | None:
    """The sub-command ``argv`` names (its first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_app(command: str | None = None) -> typer.Typer:
    """The Typer app with the module serving ``command`` (every module when None)."""
    import importlib

    import typer

    app = typer.Typer(
        help=SUMMARY,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
    )

    @app.callback()
    def main(
        debug: bool = typer.Option(False, "--debug", help=OPTIONS["--debug"]),
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help=OPTIONS["--version"]
        ),
    ) -> None:
        if debug:
            os.environ["DEV8_DEBUG"] = "1"

    module = MODULES.get(command or "") or HIDDEN.get(command or "")
    names = [module] if module else dict.fromkeys([*MODULES.values(), *HIDDEN.values()])
    for name in names:
        importlib.import_module(f"dev8.cli.{name}").register(app)
    return app


def _version(value: bool) -> None:
    if value:
        print(f"dev8 {__version__}")
        sys.exit(0)


def _dispatch(argv: list[str]) -> None:
    if argv == ["--version"]:
        print(f"dev8 {__version__}")
        return
    if not argv or argv in (["--help"], ["-h"]):
        sys.stdout.write(top_help())
        return
    if len(argv) == 2 and argv[0] == "ssh-proxy" and _relayed_quickly(argv[1]):
        return
    if argv and argv[0] in ("ls", "status") and _looked_quickly(argv[0], argv[1:]):
        return
    complete = "_DEV8_COMPLETE" in os.environ or "--install-completion" in argv
    build_app(None if complete else _command_of(argv))()


def _relayed_quickly(name: str) -> bool:
    """`ssh dev8.NAME` pays for every import at each connection: the quick way when it
    applies (see ``dev8.cli.ssh_proxy``), else the full command."""
    from dev8.cli.ssh_proxy import relay_if_pinned

    return relay_if_pinned(name)


def _looked_quickly(command: str, args: list[str]) -> bool:
    """`dev8 ls` and `dev8 status NAME`, each with or without ``--json``, without Typer
    (which, with the pydantic it coerces parameters with, costs more than the command);
    any other form of them (``--help``, an unknown option) is Typer's."""
    from dev8.cli.looking import show_list, show_status

    words = [arg for arg in args if arg != "--json"]
    as_json = len(words) < len(args)
    if command == "ls" and not words:
        show_list(as_json)
    elif command == "status" and len(words) == 1 and not words[0].startswith("-"):
        show_status(words[0], as_json)
    else:
        return False
    return True


def run() -> None:
    """Run the CLI: an everyday command in a child of the warm process when one runs
    (``dev8.cli.warm``), else here."""
    argv = sys.argv[1:]
    if argv and argv[0] in WARM_COMMANDS:
        from dev8.cli.warm.client import run_warm

        code = run_warm(argv)
        if code is not None:
            sys.exit(code)
    run_here()


def run_here() -> None:
    """Run the CLI in this process. Every ``Dev8Error`` becomes one red line and exit code
    1; an unexpected exception becomes one line too, with the traceback available through
    ``--debug``."""
    from dev8.core.errors import Dev8Error

    try:
        _dispatch(sys.argv[1:])
    except Dev8Error as exc:
        if os.environ.get("DEV8_DEBUG"):
            raise
        _error(exc.message)
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("DEV8_DEBUG"):
            raise
        _error(f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)")
        sys.exit(2)


def _error(message: str) -> None:
    from dev8.cli.output import error_line

    error_line(message)
