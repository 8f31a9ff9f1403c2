"""`dev8 ls` and `dev8 history` in a narrow terminal: names whole, less important columns
left out, the message wrapped, no line wider than the terminal."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from rich.console import Console

from dev8.cli.render import history_table, workspace_table
from dev8.cli.tables import Column, fit
from dev8.core.quotas import QuotaUse
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Operation, Workspace

NOW = datetime.now(timezone.utc)
LONGEST = "a" * 63  # the longest name dev8 accepts


def workspace(name: str, index: int, message: str = "") -> Workspace:
    return Workspace(
        id=f"{index:012x}",
        name=name,
        owner="me",
        image_ref="dev8/workspace:latest",
        image_id="sha256:" + "0" * 64,
        resources=Resources(2, 4096),
        desired_state=DesiredState.RUNNING,
        observed_state=ObservedState.RUNNING if index % 2 else ObservedState.STOPPED,
        status_message=message,
        ports={"ide": 40000 + index, "ssh": 41000 + index},
        created_at=NOW - timedelta(days=index),
    )


def rendered(table: object, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return [line.rstrip() for line in text.splitlines()]


def names_in(lines: list[str]) -> list[str]:
    return [line.split()[0] for line in lines[1:] if line and not line.startswith(" ")]


def test_names_are_whole_and_the_message_wraps_at_80_columns():
    message = "the agent reports sshd failing: exited with status 255; see `dev8 logs`"
    found = [workspace("web", 1), workspace("data-science-2", 2, message)]
    uses = {ws.id: [QuotaUse("home", 3 << 30, 20 << 30)] for ws in found}
    lines = rendered(workspace_table(found, uses, 80), 80)
    assert all(len(line) <= 80 for line in lines), lines
    assert names_in(lines) == ["web", "data-science-2"]
    assert lines[0].split() == ["NAME", "STATE", "IDE", "SSH", "MESSAGE"]
    start = lines[0].index("MESSAGE")
    assert " ".join(line[start:] for line in lines[2:]) == message


def test_the_longest_name_is_never_cut():
    found = [workspace("web", 1), workspace(LONGEST, 2, "a message")]
    lines = rendered(workspace_table(found, {}, 80), 80)
    assert all(len(line) <= 80 for line in lines), lines
    assert names_in(lines) == ["web", LONGEST]
    assert lines[0].split()[:2] == ["NAME", "STATE"]


def test_a_wide_terminal_shows_every_column():
    found = [workspace("web", 1, "note")]
    header = rendered(workspace_table(found, {}, 200), 200)[0].split()
    assert header == ["NAME", "STATE", "IDE", "SSH", "CPU/MEM", "DISK", "CREATED", "MESSAGE"]


def test_80_columns_keep_the_important_ones_in_order():
    found = [workspace("web", 1), workspace("api-server", 2)]
    header = rendered(workspace_table(found, {}, 80), 80)[0].split()
    assert header[:3] == ["NAME", "STATE", "IDE"]
    assert "MESSAGE" not in header  # no workspace has one


def test_fit_keeps_the_first_column_even_when_nothing_fits():
    name = Column("NAME", 0, cells=["x" * 100])
    state = Column("STATE", 1, cells=["running"])
    assert fit([name, state], 40) == [name]


def test_fit_gives_a_wrapping_column_what_is_left():
    columns = [
        Column("NAME", 0, cells=["web"]),
        Column("MESSAGE", 2, wrap=True, cells=["m" * 200]),
        Column("IDE", 1, cells=["http://127.0.0.1:40001"]),
    ]
    assert [c.header for c in fit(columns, 50)] == ["NAME", "MESSAGE", "IDE"]
    assert [c.header for c in fit(columns, 30)] == ["NAME", "IDE"]


def test_history_fits_80_columns():
    operations = [
        Operation(
            id=str(i),
            workspace_id="w",
            action="start",
            actor="someone-with-a-long-name",
            started_at=NOW,
            finished_at=NOW + timedelta(seconds=3),
            result="failed",
            message="workspace web stopped while starting: exit code 1; see `dev8 logs web`",
        )
        for i in range(3)
    ]
    lines = rendered(history_table(operations, 80), 80)
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[0].split()[:2] == ["WHEN", "ACTION"]
