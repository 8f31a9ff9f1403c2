"""Engine fixtures: a real Docker engine, the real workspace image, cleanup by label.

Every test that uses them, directly or through other fixtures, is marked ``engine``
(``tests.marks``): the ``client`` fixture, which all the others build on, declares it.
Every object a test creates carries the label ``dev.dev8.owner=<session owner>``; the
session removes all of them at the end, whatever happened (``tests.integration.owned``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from playwright.sync_api import Browser, sync_playwright

from dev8.imagebuild import layers
from dev8.imagebuild.builder import BuildOptions, BuildProgress, build_all
from dev8.imagebuild.ca import default_ca_bundle
from dev8.providers.docker.client import connect
from dev8.providers.docker.engine import ensure_engine
from dev8.providers.docker.provider import DockerProvider
from dev8.service.workspaces import WorkspaceService
from dev8.store.store import Store
from tests.integration.owned import OWNER, remove_owned
from tests.integration.remote.browser_session import CHROMIUM, FLAGS
from tests.marks import BROWSER, ENGINE, needs


@pytest.fixture(scope="session")
@needs(ENGINE)
def client() -> Iterator[docker.DockerClient]:
    ensure_engine()
    client = connect()
    yield client
    remove_owned(client, OWNER)


@pytest.fixture(scope="session")
def workspace_image(client: docker.DockerClient) -> str:
    """The workspace image built from this checkout (the engine's cache makes it quick when
    nothing changed), so the tests always run the current agent."""
    build_all(client, BuildOptions(extra_ca=default_ca_bundle()), BuildProgress())
    return client.images.get(layers.workspace_image()).id


@pytest.fixture
@needs(BROWSER)
def chromium() -> str:
    """Debian's Chromium, for Playwright (never `playwright install`)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no browser: {CHROMIUM} is missing (scripts/test-tools.sh installs it)")
    return CHROMIUM


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    """Chromium, headless, launched by Playwright with the flags this machine needs."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def provider(client: docker.DockerClient) -> DockerProvider:
    return DockerProvider(client)


@pytest.fixture
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@pytest.fixture
def dev8(tmp_path: Path, workspace_image: str):
    """The `dev8` command as a user runs it: a subprocess with its own HOME and data
    directory; what it created is purged afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "DEV8_HOME": str(tmp_path / "data"),
        "LOGNAME": OWNER,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "COLUMNS": "200",
    }

    def run(*args: str, check: bool = True, input: str | None = None, **extra_env: str):
        result = subprocess.run(
            [sys.executable, "-m", "dev8", *args],
            capture_output=True,
            text=True,
            env={**env, **extra_env},
            input=input,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"dev8 {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    run.env = env
    run.home = home
    run.data = tmp_path / "data"
    yield run
    for workspace in json.loads(run("ls", "--json").stdout):
        run("rm", "--purge", "--yes", workspace["name"], check=False)


@pytest.fixture
def service(
    tmp_path: Path, provider: DockerProvider, ssh_key: Path, workspace_image: str
) -> Iterator[WorkspaceService]:
    svc = WorkspaceService(
        store=Store.open_sqlite(tmp_path / "dev8.db"),
        provider=provider,
        owner=OWNER,
        authorized_keys=lambda: ssh_key.with_suffix(".pub").read_text(),
    )
    yield svc
    for workspace in svc.store.list(OWNER, include_removed=True):
        provider.remove(workspace.id)
        provider.remove_volumes(workspace.id)
