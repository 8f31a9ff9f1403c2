"""Attack: another user of the machine reads a member's API token from `ps` (or from the
member's shell history) while `dev8 login URL --token TOKEN` runs. Before, the command line
was the only way to log in with a token; now `--token-stdin` (as `docker login
--password-stdin`) and DEV8_TOKEN take it where `ps` cannot see it, and `--token` still
works for the scripts that use it but warns on stderr.

`dev8` runs as a user runs it (a subprocess with its own HOME and data directory) against
the real server application under uvicorn; no engine: the provider is the fake one of
``tests.fakes`` (logging in never reaches it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dev8.store.db import sqlite_url
from tests.integration.server.live import serving

WARNING = "warning: --token shows the token in `ps`"


@dataclass
class Member:
    url: str
    token: str
    home: Path

    def dev8(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
        """`dev8 ARGS` in a clean environment (no DEV8_SERVER_URL or DEV8_TOKEN but ``env``)."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DEV8_")}
        return subprocess.run(
            [sys.executable, "-m", "dev8", *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
            env={**clean, "HOME": str(self.home), "DEV8_HOME": str(self.home / "dev8"), **env},
        )

    def saved_token(self) -> str:
        return json.loads((self.home / "dev8" / "server.json").read_text())["token"]


@pytest.fixture
def member(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Member]:
    """alice's API token on a server on SQLite (what is tested is the CLI)."""
    database = tmp_path / "server.db"
    shutil.copy(migrated_sqlite, database)
    with serving(tmp_path, sqlite_url(database)) as api:
        alice = api.member("alice")
        home = tmp_path / "home"
        home.mkdir()
        yield Member(api.url, alice.headers["Authorization"].removeprefix("Bearer "), home)


def logged_in(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == 0 and "Logged in to" in result.stdout


def test_the_token_comes_from_stdin(member: Member):
    result = member.dev8("login", member.url, "--token-stdin", stdin=member.token + "\n")
    assert logged_in(result), result.stderr
    assert member.saved_token() == member.token and WARNING not in result.stderr


def test_the_token_comes_from_dev8_token(member: Member):
    result = member.dev8("login", member.url, DEV8_TOKEN=member.token)
    assert logged_in(result), result.stderr
    assert member.saved_token() == member.token and WARNING not in result.stderr


def test_a_token_on_the_command_line_still_works_but_warns(member: Member):
    result = member.dev8("login", member.url, "--token", member.token)
    assert logged_in(result), result.stderr
    assert [line for line in result.stderr.splitlines() if WARNING in line]


def test_token_stdin_with_a_password_option_is_refused_in_one_line(member: Member):
    result = member.dev8(
        "login", member.url, "--token-stdin", "--password-stdin", stdin=member.token
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--token-stdin" in result.stderr and not (member.home / "dev8/server.json").exists()


def test_an_empty_stdin_is_refused(member: Member):
    result = member.dev8("login", member.url, "--token-stdin", stdin="")
    assert result.returncode == 1 and "read no token" in result.stderr
