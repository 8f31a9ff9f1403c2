"""Fixtures for the server: the real application served by a real uvicorn on a free
loopback port (``live``), on a real database (SQLite, and PostgreSQL when
``DEV8_TEST_DATABASE_URL`` names a server: ``tests.databases``).

Where a test needs no engine, the provider is the fault-injecting ``tests.fakes``; each
such test says so.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

# The root conftest's, named here for the modules that still import it from this one.
from tests.conftest import cheap_password_hashes  # noqa: F401
from tests.integration.server.live import IMAGE, Api, serving
from tests.integration.server.signed_in import Browser, sign_in


@pytest.fixture
def make_api(tmp_path: Path, database_url: str):
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(serving(tmp_path, database_url, **overrides))


@pytest.fixture
def api(make_api) -> Api:
    return make_api()


@pytest.fixture(scope="module")
def module_api(tmp_path_factory: pytest.TempPathFactory, module_database_url: str):
    """One server for a whole module whose tests each make fresh resources. It observes its
    workspaces every 2 s rather than 0.2 s: such a module makes hundreds of them, whose
    observation (each running one asked about at every pass) would take most of the CPU,
    and only their operations (run at once, as ever) concern these tests."""
    directory = tmp_path_factory.mktemp("server")
    with serving(directory, module_database_url, observe_interval_s=2.0) as api:
        yield api


@pytest.fixture
def alice(api: Api) -> Browser:
    """alice, a member signed in to the dashboard, who owns the running workspace ``w``."""
    client = api.member("alice")
    api.settle(client, client.post("/api/v1/workspaces", json={"name": "w", "image": IMAGE}).json())
    return sign_in(api, "alice", "alice-password-1234")


@pytest.fixture
def bob(api: Api) -> Browser:
    """bob, another member signed in to the dashboard, who owns nothing."""
    api.member("bob")
    return sign_in(api, "bob", "bob-password-1234")
