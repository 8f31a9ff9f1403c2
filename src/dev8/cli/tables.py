"""Tables that fit the terminal: the columns that matter most are kept whole, the others are
left out when there is no room, and one column of free text wraps in what remains.

A name is never cut: the first column always gets its full width. Pure except for building
the Rich table at the end, so the layout can be tested at any width."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

GAP = 2  # between columns (Rich's padding of 1 on each side, none at the edges)
MIN_WRAP = 16  # a wrapping column narrower than this is not worth showing


@dataclass
class Column:
    """``cells`` are Rich markup; ``priority`` orders what is kept (0 first, always kept);
    a ``wrap`` column takes what width is left and wraps its text in it."""

    header: str
    priority: int
    wrap: bool = False
    cells: list[str] = field(default_factory=list)

    def natural_width(self) -> int:
        return max([cell_width(self.header), *(cell_width(cell) for cell in self.cells)])

    def min_width(self) -> int:
        natural = self.natural_width()
        return min(natural, MIN_WRAP) if self.wrap else natural

    def empty(self) -> bool:
        return not any(cell_width(cell) for cell in self.cells)


@functools.cache  # parsing markup is the slow part of a table; cells repeat ("-", states)
def cell_width(markup: str) -> int:
    """The terminal cells ``markup`` takes once its [style] tags are rendered (and its
    control characters written out, as ``dev8.cli.output`` prints them)."""
    from rich.text import Text

    from dev8.cli.output import visible_controls

    return Text.from_markup(visible_controls(markup)).cell_len


def fit(columns: list[Column], width: int) -> list[Column]:
    """The columns to show in ``width`` cells, in their original order: by priority, each
    that still fits at its minimum width; a wrapping column without text is left out."""
    kept: list[Column] = []
    used = 0
    for column in sorted(columns, key=lambda c: c.priority):
        if column.wrap and column.empty():
            continue
        need = column.min_width() + (GAP if kept else 0)
        if column.priority == 0 or used + need <= width:
            kept.append(column)
            used += need
    return [column for column in columns if column in kept]


def render(columns: list[Column], width: int) -> Table:
    """A borderless Rich table of the columns that fit in ``width``."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    shown = fit(columns, width)
    for column in shown:
        if column.wrap:
            table.add_column(column.header, overflow="fold")
        else:
            table.add_column(column.header, no_wrap=True, min_width=column.natural_width())
    for row in zip(*(column.cells for column in shown), strict=True):
        table.add_row(*row)
    return table
