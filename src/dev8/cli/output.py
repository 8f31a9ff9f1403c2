"""Console output shared by every command: one console, one way to print errors and JSON."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from rich.table import Table

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


@contextmanager
def spinner(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr; the function it yields shows an operation's progress messages."""
    from rich.status import Status

    started = time.monotonic()
    with Status(title, console=err_console) as status:

        def update(message: str) -> None:
            status.update(f"{title}: {message} [dim]({time.monotonic() - started:.1f} s)[/]")

        yield update


def took(started: float) -> str:
    """The seconds since ``started`` (``time.monotonic()``), dimmed, for a closing line."""
    return f"[dim]({time.monotonic() - started:.1f} s)[/]"


def plain_table(*headers: str) -> Table:
    """A borderless table with bold headers whose cells wrap rather than lose their end in a
    narrow terminal (`dev8 ls` chooses its columns instead: ``dev8.cli.tables``)."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    return table
