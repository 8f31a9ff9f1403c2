"""A Rich progress bar for long transfers (backups, restores, checks), on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from dev8.backup.progress import TransferProgress
from dev8.cli.output import err_console


class RichTransfer(TransferProgress):
    """One bar per volume or archive: bytes done of the total, rate, elapsed time. The
    display starts with the first bar, so a command that fails early prints one line."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.started = False

    def message(self, text: str) -> None:
        self.progress.console.print(f"[dim]•[/] {text}", highlight=False)

    def start(self, label: str, total: int | None) -> None:
        self.finish()
        if not self.started:
            self.progress.start()
            self.started = True
        self.task = self.progress.add_task(label, total=total, detail="")

    def update(self, done: int, detail: str = "") -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=done, detail=detail)

    def finish(self) -> None:
        if self.task is None:
            return
        task = self.progress.tasks[self.task]
        # A total measured before the work (file sizes) is an estimate; end the bar full.
        self.progress.update(
            self.task, total=task.completed or task.total, completed=task.completed
        )
        self.progress.stop_task(self.task)
        self.task = None


@contextmanager
def transfer() -> Iterator[RichTransfer]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=30),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[detail]}"),
    )
    reporter = RichTransfer(Progress(*columns, console=err_console))
    try:
        yield reporter
    finally:
        if reporter.started:
            reporter.progress.stop()
