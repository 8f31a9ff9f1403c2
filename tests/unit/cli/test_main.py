"""The `dev8` entry point: its own top-level help lists exactly the commands the modules
register, fits 80 columns, and `--version`, `--help` and each command import only what
they use."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from dev8.cli.main import GROUPS, HIDDEN, MODULES, _command_of, build_app, top_help


def registered() -> dict[str, bool]:
    """Every command of the full app: name -> hidden."""
    group = typer.main.get_command(build_app())
    assert isinstance(group, typer.core.TyperGroup)
    return {name: bool(command.hidden) for name, command in group.commands.items()}


def test_the_top_level_help_lists_every_command_once():
    commands = registered()
    assert {name for name, hidden in commands.items() if not hidden} == set(MODULES)
    assert {name for name, hidden in commands.items() if hidden} == set(HIDDEN)
    listed = [command for modules in GROUPS.values() for c in modules.values() for command in c]
    assert len(listed) == len(set(listed))


def test_the_top_level_help_fits_80_columns():
    text = top_help()
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "Usage: dev8" in text and "  ls " in text


@pytest.mark.parametrize(
    "argv,command",
    [
        (["ls"], "ls"),
        (["--debug", "status", "web"], "status"),
        (["snapshot", "ls", "web"], "snapshot"),
        (["--debug"], None),
    ],
)
def test_the_command_is_the_first_word_that_is_not_an_option(argv, command):
    assert _command_of(argv) == command


def imports_of(*argv: str) -> set[str]:
    """The modules a `dev8` run imported (the command itself may fail: no engine needed)."""
    code = (
        "import sys; sys.argv = ['dev8', *sys.argv[1:]]\n"
        "from dev8.cli.main import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('\\nMODULES ' + ' '.join(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60
    )
    return set(result.stderr.rpartition("MODULES ")[2].split())


@pytest.mark.parametrize("argv", [["--version"], ["--help"], []])
def test_version_and_help_load_no_command(argv):
    loaded = imports_of(*argv)
    assert "dev8.cli.main" in loaded
    assert not {"typer", "rich", "click", "docker", "sqlalchemy", "httpx"} & loaded


def test_a_command_loads_only_its_module():
    loaded = imports_of("history", "--help")
    assert "dev8.cli.inspect" in loaded
    assert not {"dev8.cli.backups", "dev8.cli.server", "dev8.cli.image"} & loaded
    assert not {"docker", "sqlalchemy", "httpx"} & loaded


def test_a_read_only_command_does_no_migration_work_once_the_schema_is_current():
    imports_of("ls")  # the first command creates the database
    loaded = imports_of("ls")
    assert "alembic" not in loaded
    assert not {"httpx", "dev8.client", "dev8.cli.remote"} & loaded  # local mode: no server


@pytest.mark.engine
def test_looking_loads_neither_typer_nor_the_database_or_engine_libraries():
    imports_of("ls")  # the first command creates the database
    for argv in (["ls"], ["status", "nosuch"]):
        loaded = imports_of(*argv)
        assert not {"typer", "pydantic", "sqlalchemy", "docker", "cryptography"} & loaded, argv
