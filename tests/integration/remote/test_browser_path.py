"""The IDE through the server in path mode, from the laptop's browser: real Chromium opens
``/@OWNER/NAME/``, is sent to dev8's sign-in page, signs in, gets VS Code's workbench (no
second password prompt: code-server has none behind the proxy), and creates and saves a file
with the editor; the file is in the workspace's /workspace."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import docker
import pytest

from tests.integration.remote.laptop import (
    ADMIN_PASSWORD,
    Laptop,
    RemoteServer,
    browse,
    read_in_container,
    up_from_laptop,
    workspace_container,
)
from tests.integration.server.live import wait_for

NAME = "laptop-ide"
FILE = "/workspace/hello-from-browser.txt"
TEXT = "hello-from-the-laptop-browser-in-path-mode"


@pytest.fixture(scope="module")
def workspace(the_laptop: Laptop, server: RemoteServer) -> str:
    return up_from_laptop(the_laptop, server, NAME)


def test_sign_in_open_the_ide_and_save_a_file(
    the_laptop: Laptop,
    server: RemoteServer,
    workspace: str,
    client: docker.DockerClient,
    chromium: str,
    tmp_path: Path,
) -> None:
    ide = f"{server.url}/@{server.owner}/{workspace}/"
    report = browse(
        the_laptop,
        tmp_path / "browser",
        url=ide,
        username=server.owner,
        password=ADMIN_PASSWORD,
        file=FILE,
        text=TEXT,
    )
    signed_in_at = urlsplit(report["signed_in_at"] or "")
    assert signed_in_at.path == "/login", report  # sent to dev8's sign-in page first
    assert report["final_url"].startswith(ide), report  # and back to the IDE after it
    assert report["password_prompts"] == 0, report

    container = workspace_container(client, server, workspace)
    saved = wait_for(lambda: read_in_container(container, FILE), 30, f"{FILE} in the workspace")
    assert saved == TEXT.encode()
