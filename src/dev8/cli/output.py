"""Console output shared by every command: one console, one way to print errors and JSON."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.segment import Segment

if TYPE_CHECKING:
    from rich.console import ConsoleOptions, RenderableType
    from rich.table import Table
    from rich.text import Text

# C0 and C1 control characters but tab and newline. In a name, a message or a status that
# a workspace or a member wrote, ESC, BEL or CSI would drive the terminal: set its title,
# clear the screen, hide text, fake a hyperlink.
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible_controls(text: str) -> str:
    """``text`` with each control character but tab and newline written out, as ``\\x1b``."""
    return CONTROLS.sub(lambda found: f"\\x{ord(found[0]):02x}", text)


class TerminalConsole(Console):
    """A console whose printed text cannot drive the terminal: control characters in any
    text show as ``\\x1b``-style text; only the console's own styles and cursor moves reach
    the terminal as escape sequences.

    Strings are cleaned before layout (tables then measure what is shown); the segments
    are checked again at the end for text that never was a string here (a spinner's, a
    progress bar's ``Text``)."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(visible_controls(text), **options)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or not CONTROLS.search(segment.text):
                yield segment
            else:
                yield Segment(visible_controls(segment.text), segment.style)


console = TerminalConsole()
err_console = TerminalConsole(stderr=True)


def reset_consoles() -> None:
    """Both consoles as if made now: a command forked from the warm process (which
    imported this module with no terminal) detects the terminal, its size and colours
    again. They are initialised in place, because commands import them by name."""
    console.__init__()  # type: ignore[misc]
    err_console.__init__(stderr=True)  # type: ignore[misc]


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
