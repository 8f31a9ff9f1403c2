"""Backup fixtures: the services over the session's engine, and the `dev8` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dev8.service.backups import BackupService
from dev8.service.workspaces import CreateRequest, WorkspaceService
from tests.integration.conftest import OWNER


@pytest.fixture
def backups(service: WorkspaceService) -> BackupService:
    return BackupService(service)


@pytest.fixture
def make_workspace(service: WorkspaceService):
    """Create (not start) a workspace and return it."""

    def make(name: str, **kw):
        return service.create(CreateRequest(name=name, **kw))

    return make


@pytest.fixture
def dev8(tmp_path: Path, workspace_image: str):
    """The `dev8` command in a subprocess, with its own data directory."""
    env = {
        **os.environ,
        "DEV8_HOME": str(tmp_path / "data"),
        "LOGNAME": OWNER,
        "COLUMNS": "200",
    }

    def run(*args: str, check: bool = True, **popen):
        if popen.pop("background", False):
            return subprocess.Popen([sys.executable, "-m", "dev8", *args], env=env, **popen)
        result = subprocess.run(
            [sys.executable, "-m", "dev8", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"dev8 {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    run.env = env
    yield run
    for workspace in json.loads(run("ls", "--json").stdout):
        run("rm", "--purge", "--yes", workspace["name"], check=False)


def one_line_error(result) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]
