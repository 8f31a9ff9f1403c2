"""Fixtures of the remote-access tests (``tests.integration.remote.laptop``): per module, a
laptop (a network namespace), a real `dev8 server` on the real engine listening on the one
address the laptop reaches, the laptop's `dev8` logged in to it, and one workspace made from
the laptop with `dev8 up` (a workspace start is the slow part: one per module).

They need root (``ip netns``); without it they are skipped, saying so."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import docker
import pytest

from tests.integration.owned import OWNER
from tests.integration.remote.laptop import (
    Laptop,
    RemoteServer,
    laptop,
    remote_server,
    signed_in_laptop,
    unique_owner,
)
from tests.marks import ENGINE, needs


@pytest.fixture(scope="module")
@needs(ENGINE)
def the_laptop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Laptop]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("the laptop is a network namespace: needs root and iproute2")
    with laptop(tmp_path_factory.mktemp("laptop")) as made:
        yield made


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    the_laptop: Laptop,
    client: docker.DockerClient,
    workspace_image: str,
) -> Iterator[RemoteServer]:
    """A server (path mode only) listening on the laptop's one reachable address, the
    laptop's `dev8` logged in to it as its admin."""
    directory = tmp_path_factory.mktemp("server")
    with remote_server(directory, the_laptop.host_address, unique_owner(OWNER), client) as made:
        signed_in_laptop(the_laptop, made)
        yield made


def up_from_laptop(the_laptop: Laptop, server: RemoteServer, name: str) -> str:
    """``name`` created and started from the laptop (`dev8 up`), running."""
    the_laptop.dev8("up", name, timeout=300)
    with server.admin() as admin:
        assert admin.workspaces.get(name).reload().state == "running"
    return name
