"""The IDE through the server in subdomain mode, from the laptop's browser: the server has
``DEV8_APPS_DOMAIN=apps.test`` and ``DEV8_PUBLIC_URL=http://dev8.test:PORT``, and Chromium
resolves both names to the server's address (``--host-resolver-rules``; there is no DNS on
the laptop). Opening ``http://NAME--OWNER.apps.test:PORT/`` sends the browser to the sign-in
page on the main host, then back through the one-time ticket to the app host, whose own
cookie opens the workbench; a file saved with the editor is in /workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import docker
import pytest

from tests.integration.owned import OWNER
from tests.integration.remote.laptop import (
    ADMIN_PASSWORD,
    Laptop,
    RemoteServer,
    browse,
    read_in_container,
    remote_server,
    signed_in_laptop,
    unique_owner,
    up_from_laptop,
    workspace_container,
)
from tests.integration.server.live import wait_for
from tests.net import free_port

NAME = "laptop-apps"
APPS_DOMAIN = "apps.test"
MAIN_HOST = "dev8.test"
FILE = "/workspace/hello-from-subdomain.txt"
TEXT = "hello-from-the-laptop-browser-in-subdomain-mode"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    the_laptop: Laptop,
    client: docker.DockerClient,
    workspace_image: str,
) -> Iterator[RemoteServer]:
    """This module's server: subdomain mode on, under names only the browser resolves."""
    port = free_port(the_laptop.host_address)
    with remote_server(
        tmp_path_factory.mktemp("apps-server"),
        the_laptop.host_address,
        unique_owner(OWNER),
        client,
        port=port,
        apps_domain=APPS_DOMAIN,
        public_url=f"http://{MAIN_HOST}:{port}",
    ) as made:
        signed_in_laptop(the_laptop, made)  # the CLI uses the address; names are the browser's
        yield made


@pytest.fixture(scope="module")
def workspace(the_laptop: Laptop, server: RemoteServer) -> str:
    return up_from_laptop(the_laptop, server, NAME)


def test_sign_in_through_the_ticket_open_the_ide_and_save_a_file(
    the_laptop: Laptop,
    server: RemoteServer,
    workspace: str,
    client: docker.DockerClient,
    chromium: str,
    tmp_path: Path,
) -> None:
    app_host = f"{workspace}--{server.owner}.{APPS_DOMAIN}"
    report = browse(
        the_laptop,
        tmp_path / "browser",
        url=f"http://{app_host}:{server.port}/",
        username=server.owner,
        password=ADMIN_PASSWORD,
        file=FILE,
        text=TEXT,
        resolver_rules=(f"MAP *.{APPS_DOMAIN} {server.address}, MAP {MAIN_HOST} {server.address}"),
    )
    signed_in_at = urlsplit(report["signed_in_at"] or "")
    assert (signed_in_at.hostname, signed_in_at.path) == (MAIN_HOST, "/login"), report
    hops = [urlsplit(url) for url in report["visited"]]
    # Back to the app host through the ticket exchange, never a parent-domain cookie.
    assert any(h.hostname == app_host and h.path == "/__dev8/auth" for h in hops), report
    final = urlsplit(report["final_url"])
    assert (final.hostname, final.port) == (app_host, server.port), report
    assert report["password_prompts"] == 0, report

    container = workspace_container(client, server, workspace)
    saved = wait_for(lambda: read_in_container(container, FILE), 30, f"{FILE} in the workspace")
    assert saved == TEXT.encode()


def test_signed_in_on_the_main_host_the_app_host_opens_through_the_ticket_alone(
    the_laptop: Laptop,
    server: RemoteServer,
    workspace: str,
    client: docker.DockerClient,
    chromium: str,
    tmp_path: Path,
) -> None:
    """A member signed in already (on the main host, as from the dashboard) follows an IDE
    link: only redirects (GET) lead through the ticket to the app host, no sign-in form."""
    app_host = f"{workspace}--{server.owner}.{APPS_DOMAIN}"
    file = "/workspace/hello-after-sign-in.txt"
    text = "hello-from-the-laptop-browser-signed-in-first"
    report = browse(
        the_laptop,
        tmp_path / "browser",
        sign_in_first=f"http://{MAIN_HOST}:{server.port}/login?next=/",
        url=f"http://{app_host}:{server.port}/",
        username=server.owner,
        password=ADMIN_PASSWORD,
        file=file,
        text=text,
        resolver_rules=(f"MAP *.{APPS_DOMAIN} {server.address}, MAP {MAIN_HOST} {server.address}"),
    )
    assert report["signed_in_first_at"] is not None, report
    assert report["signed_in_at"] is None, report  # the session did: no second sign-in
    hops = [urlsplit(url) for url in report["visited"]]
    assert any(h.hostname == app_host and h.path == "/__dev8/auth" for h in hops), report
    final = urlsplit(report["final_url"])
    assert (final.hostname, final.port) == (app_host, server.port), report

    container = workspace_container(client, server, workspace)
    saved = wait_for(lambda: read_in_container(container, file), 30, f"{file} in the workspace")
    assert saved == text.encode()
