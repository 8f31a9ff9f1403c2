"""Fixtures for the server: a real database (SQLite, and PostgreSQL when
``DEV8_TEST_DATABASE_URL`` names a server: ``scripts/postgres.sh`` starts one and prints it),
and the real application served by a real uvicorn on a free loopback port.

Where a test needs no engine, the provider is the fault-injecting ``tests.fakes``; each
such test says so.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dev8.server.app import create_app
from dev8.server.context import ServerContext
from dev8.server.settings import Settings
from dev8.store.db import normalize_url, sqlite_url
from dev8.store.secretbox import new_key
from tests.fakes import FakeAgent, FakeProvider

ADMIN_PASSWORD = "admin-password-for-tests"
PG_SKIP = (
    "DEV8_TEST_DATABASE_URL is not set; `scripts/postgres.sh` starts a PostgreSQL server "
    "and prints the URL (scripts/test.sh sets it)"
)


def postgres_url() -> str | None:
    return os.environ.get("DEV8_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _database(request.param, tmp_path)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from _database(request.param, tmp_path_factory.mktemp("db"))


def _database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield sqlite_url(directory / "server.db")
        return
    base = postgres_url()
    if not base:
        pytest.skip(PG_SKIP)
    with fresh_postgres_database(base) as url:
        yield url


class fresh_postgres_database:
    """A database of its own for one test, dropped afterwards."""

    def __init__(self, base: str) -> None:
        self.admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
        self.name = f"dev8_test_{secrets.token_hex(4)}"
        self.url = make_url(normalize_url(base)).set(database=self.name)

    def __enter__(self) -> str:
        with self.admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {self.name}"))
        return self.url.render_as_string(hide_password=False)

    def __exit__(self, *_exc: object) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
        self.admin.dispose()


def test_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret_key": new_key(),
        "admin_password": ADMIN_PASSWORD,
        "server_dir": tmp_path / "server",
        "database_url": database_url,
        "reconcile_interval_s": 0.05,
        "observe_interval_s": 0.2,
        "shutdown_grace_s": 2.0,
        "db_pool_size": 10,
        **overrides,
    }
    return Settings(**values)


class LiveServer:
    """The app under a real uvicorn in a thread, on a port the kernel picked."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.socket.close()

    @property
    def context(self) -> ServerContext:
        return self.app.state.context


@dataclass
class Api:
    """A running server and ways to talk to it as different people."""

    live: LiveServer
    provider: FakeProvider
    agent: FakeAgent
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def context(self) -> ServerContext:
        return self.live.context

    def anonymous(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=30)
        self.clients.append(client)
        return client

    def login(self, name: str, password: str) -> httpx.Client:
        answer = self.anonymous().post(
            "/api/v1/auth/login", json={"username": name, "password": password}
        )
        assert answer.status_code == 201, answer.text
        client = httpx.Client(
            base_url=self.url,
            timeout=30,
            headers={"Authorization": f"Bearer {answer.json()['token']}"},
        )
        self.clients.append(client)
        return client

    def admin(self) -> httpx.Client:
        return self.login("admin", ADMIN_PASSWORD)

    def member(self, name: str, role: str = "member") -> httpx.Client:
        password = f"{name}-password-1234"
        created = self.admin().post(
            "/api/v1/users", json={"name": name, "password": password, "role": role}
        )
        assert created.status_code == 201, created.text
        return self.login(name, password)

    def wait_operation(self, client: httpx.Client, operation_id: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            operation = client.get(f"/api/v1/operations/{operation_id}").json()
            if operation["result"] in ("succeeded", "failed"):
                return operation
            time.sleep(0.05)
        raise AssertionError(f"operation {operation_id} did not finish in {timeout} s")

    def settle(self, client: httpx.Client, accepted: dict, timeout: float = 30) -> list[dict]:
        return [self.wait_operation(client, op["id"], timeout) for op in accepted["operations"]]


@contextmanager
def serving(
    directory: Path,
    database_url: str,
    provider: FakeProvider | None = None,
    agent: FakeAgent | None = None,
    **overrides: Any,
) -> Iterator[Api]:
    """A server with the fake provider and agent (no engine), torn down afterwards."""
    provider, agent = provider or FakeProvider(), agent or FakeAgent()
    settings = test_settings(directory, database_url, **overrides)
    app = create_app(settings, provider=provider, agent=agent)
    with LiveServer(app) as live:
        api = Api(live, provider, agent)
        try:
            yield api
        finally:
            for client in api.clients:
                client.close()
    api.context.store.engine.dispose()


@pytest.fixture
def make_api(tmp_path: Path, database_url: str):
    with ExitStack() as stack:
        yield lambda **overrides: stack.enter_context(serving(tmp_path, database_url, **overrides))


@pytest.fixture
def api(make_api) -> Api:
    return make_api()


@pytest.fixture(scope="module")
def module_api(tmp_path_factory: pytest.TempPathFactory, module_database_url: str):
    """One server for a whole module whose tests each make fresh resources."""
    with serving(tmp_path_factory.mktemp("server"), module_database_url) as api:
        yield api
