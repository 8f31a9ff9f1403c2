"""Attack: a workspace's agent (or a member, through any text field the CLI shows) puts
terminal escape sequences in what another person's `dev8 ls`, `status` or `history` prints:
``ESC ] 0 ; … BEL`` retitles their terminal, ``ESC [ 2 J`` clears it, ``ESC ] 8`` fakes a
hyperlink. Before, they reached the terminal as they came (Rich keeps ESC); now every
control character but tab and newline prints as visible ``\\x1b``-style text, in one place:
the CLI's console (``dev8.cli.output.TerminalConsole``).

The CLI check runs `dev8` as a user does, against the real server application under
uvicorn; no engine: the provider and the agent are the fakes of ``tests.fakes``, whose
health reason stands in for what a hostile agent reports.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dev8.cli.output import TerminalConsole, visible_controls
from dev8.cli.render import history_table, workspace_table
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Operation, Workspace
from dev8.store.db import sqlite_url
from tests.integration.server.live import Api, create, serving, wait_for

RETITLE, CLEAR = "\x1b]0;pwned\x07", "\x1b[2J"
HOSTILE = f"sshd failing{RETITLE}{CLEAR}\x9b31m done"
SHOWN = r"sshd failing\x1b]0;pwned\x07\x1b[2J\x9b31m done"


def printed(renderable: object) -> str:
    """What the CLI's console writes to a colour terminal for ``renderable``."""
    console = TerminalConsole(file=io.StringIO(), force_terminal=True, width=200)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def without_styles(output: str) -> str:
    """``output`` without the console's own SGR sequences (its colours): any ESC left is
    one that came from the printed text."""
    return re.sub(r"\x1b\[[0-9;]*m", "", output)


def hostile_workspace() -> Workspace:
    return Workspace(
        id="0" * 12,
        name="w",
        owner="mallory",
        image_ref=f"evil{RETITLE}",
        image_id="sha256:" + "0" * 64,
        resources=Resources(2, 4096),
        desired_state=DesiredState.RUNNING,
        observed_state=ObservedState.UNHEALTHY,
        status_message=HOSTILE,
    )


def test_visible_controls_writes_out_c0_and_c1_but_tab_and_newline():
    assert visible_controls("a\tb\nc\x00\x1b\x7f\x85\x9f") == "a\tb\nc\\x00\\x1b\\x7f\\x85\\x9f"


def test_ls_table_shows_a_hostile_message_escaped():
    output = printed(workspace_table([hostile_workspace()], width=200))
    assert SHOWN in output
    assert "\x1b" not in without_styles(output) and "\x07" not in output


def test_history_table_shows_a_hostile_operation_message_escaped():
    operation = Operation(
        id="1",
        workspace_id="0" * 12,
        action="start",
        actor="mallory",
        started_at=datetime.now(timezone.utc),
        result="failed",
        message=HOSTILE,
    )
    output = printed(history_table([operation], width=200))
    assert SHOWN in output and "\x1b" not in without_styles(output)


def test_text_that_was_never_a_string_is_escaped_too():
    """A spinner's or progress bar's ``Text`` is built outside the console."""
    from rich.text import Text

    output = printed(Text(HOSTILE, style="bold"))
    assert "\x1b]0;" not in output and CLEAR not in output and r"\x1b[2J" in output


# As a user runs it ------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Api]:
    """On SQLite only: what is tested is the CLI's output, not the database."""
    database = tmp_path / "server.db"
    shutil.copy(migrated_sqlite, database)
    with serving(tmp_path, sqlite_url(database)) as api:
        yield api


def dev8(api: Api, token: str, home: Path, *args: str) -> str:
    env = {
        **os.environ,
        "HOME": str(home),
        "DEV8_HOME": str(home / "dev8"),
        "DEV8_SERVER_URL": api.url,
        "DEV8_TOKEN": token,
        "COLUMNS": "200",
    }
    result = subprocess.run(
        [sys.executable, "-m", "dev8", *args], capture_output=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


def test_dev8_ls_and_status_show_what_a_hostile_agent_reports_escaped(server: Api, tmp_path: Path):
    alice = server.member("alice")
    server.settle(alice, create(alice, "w"))
    server.agent.health_reason = HOSTILE
    wait_for(
        lambda: alice.get("/api/v1/workspaces/w").json()["message"] == HOSTILE,
        message="the hostile health reason in the workspace's status",
    )
    token = alice.headers["Authorization"].removeprefix("Bearer ")

    for command in (("ls",), ("status", "w")):
        output = dev8(server, token, tmp_path, *command)
        assert SHOWN in output, output
        assert "\x1b" not in output and "\x07" not in output and "\x9b" not in output
