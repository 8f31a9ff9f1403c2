"""Console output shared by every command: one console, one way to print errors and JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def error_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def step(message: str) -> None:
    err_console.print(f"[dim]•[/] {message}", highlight=False)


def confirm_replace(name: str, question: str) -> None:
    """Ask before a restore replaces ``name``'s data; off a terminal, ``--yes`` is needed."""
    import typer

    from dev8.core.errors import InvalidInput

    if not sys.stdin.isatty():
        raise InvalidInput(
            f"restoring replaces {name}'s current data; confirm with --yes when not on a terminal"
        )
    typer.confirm(question, abort=True)
