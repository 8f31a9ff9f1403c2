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


AZURITE = Path(__file__).resolve().parents[3] / ".tools/azurite/node_modules/.bin/azurite-blob"
# The storage emulator's well-known account: restic 0.14 (Debian bookworm) sends this account
# to http://127.0.0.1:10000, the emulator's fixed address, so Azurite must listen there.
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory):
    """Azurite's blob service on 127.0.0.1:10000, telemetry off, data in a temporary dir."""
    import socket
    import time

    if not AZURITE.exists():
        pytest.fail("Azurite is not installed; run ./scripts/test-tools.sh")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 10000)) == 0:
            pytest.fail("port 10000 is taken; Azurite must listen there for restic 0.14")
    location = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost", "127.0.0.1",
            "--blobPort", "10000",
            "--location", str(location),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", 10000)) == 0:
                break
        assert process.poll() is None, "Azurite exited at start"
        assert time.monotonic() < deadline, "Azurite did not listen within 60 s"
        time.sleep(0.2)
    yield {"AZURE_ACCOUNT_NAME": EMULATOR_ACCOUNT, "AZURE_ACCOUNT_KEY": EMULATOR_KEY}
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def scratch_volumes(client):
    """Volumes a test makes by hand, labelled for the session and removed after the test
    (other tests check that nothing of theirs is left behind)."""
    from dev8.core.naming import LABEL_OWNER

    made = []

    def make(name: str | None = None, **labels: str):
        volume = client.volumes.create(name, labels={LABEL_OWNER: OWNER, **labels})
        made.append(volume)
        return volume

    yield make
    for volume in made:
        volume.remove(force=True)
