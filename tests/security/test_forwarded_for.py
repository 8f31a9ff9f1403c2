"""Attack: a user of the server's own host (where CLI users connect from 127.0.0.1) names any
client address in ``X-Forwarded-For``, and the audit log records it as theirs (or the
sign-in backoff counts them as someone else). Before the fix, `dev8 server` had uvicorn
believe the header from 127.0.0.1 by default; now nobody's is believed unless
``DEV8_TRUSTED_PROXIES`` lists the direct peer (addresses or CIDR networks), and the app
applies that itself, whichever ASGI server runs it.

The server runs with exactly the uvicorn options `dev8 server` passes (captured from
``dev8.server.main.serve``), on a free loopback port. Stand-ins (no engine): the fake
provider and agent of ``tests.fakes``; Argon2 at its lowest cost.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from dev8.core.errors import InvalidInput
from dev8.server import main
from dev8.server.app import create_app
from dev8.server.settings import load_settings
from tests.fakes import FakeAgent, FakeProvider
from tests.integration.server.live import ADMIN_PASSWORD, settings_for, wait_for

SPOOFED = "203.0.113.66"


def dev8_server_options(monkeypatch: pytest.MonkeyPatch, settings: Any) -> tuple[Any, dict]:
    """The app and the uvicorn options `dev8 server` runs with ``settings``."""
    captured: dict[str, Any] = {}

    def app_with_fakes(given: Any) -> Any:
        return create_app(given, provider=FakeProvider(), agent=FakeAgent())

    monkeypatch.setattr(main, "create_app", app_with_fakes)
    monkeypatch.setattr(
        main.uvicorn, "run", lambda app, **options: captured.update(options, app=app)
    )
    main.serve(settings)
    app = captured.pop("app")
    for where in ("host", "port"):  # a port of the test's own instead
        captured.pop(where)
    return app, captured


@contextmanager
def dev8_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, **overrides: Any
) -> Iterator[tuple[str, Any]]:
    settings = settings_for(tmp_path, database_url, **overrides)
    app, options = dev8_server_options(monkeypatch, settings)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 30, "the server's start")
        assert server.started, "the server did not start"
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", app
    finally:
        server.should_exit = True
        thread.join(15)
        listener.close()
        app.state.context.store.engine.dispose()


def failed_login(url: str, headers: dict[str, str]) -> httpx.Response:
    body = {"username": "admin", "password": "wrong"}
    return httpx.post(f"{url}/api/v1/auth/login", json=body, headers=headers, timeout=30)


def audited_sources(app: Any) -> list[str]:
    entries = app.state.context.store.audit.list(limit=100)
    return [entry.source for entry in entries if entry.path == "/api/v1/auth/login"]


def test_a_local_user_cannot_choose_the_address_the_audit_log_records(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
):
    with dev8_server(monkeypatch, tmp_path, database_url) as (url, app):
        answer = failed_login(url, {"X-Forwarded-For": SPOOFED, "X-Forwarded-Proto": "https"})

        assert answer.status_code == 401
        assert audited_sources(app) == ["127.0.0.1"]


def test_a_spoofed_address_is_no_way_round_the_sign_in_backoff(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
):
    """Each guess names another address; all count against 127.0.0.1 (20 allowed)."""
    with dev8_server(monkeypatch, tmp_path, database_url) as (url, _app):
        statuses = [
            httpx.post(
                f"{url}/api/v1/auth/login",
                json={"username": f"user{n}", "password": "wrong"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
                timeout=30,
            ).status_code
            for n in range(21)
        ]
    assert statuses == [401] * 20 + [429]


def test_a_listed_proxy_is_believed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
):
    with dev8_server(
        monkeypatch, tmp_path, database_url, trusted_proxies="10.0.0.0/8, 127.0.0.1"
    ) as (url, app):
        failed_login(url, {"X-Forwarded-For": SPOOFED})
        assert audited_sources(app) == [SPOOFED]


@pytest.mark.parametrize(
    ("peer", "believed"),
    [("10.1.2.3", True), ("fd00::7", True), ("192.168.1.9", False), ("127.0.0.1", False)],
)
def test_only_peers_in_the_listed_networks_are_believed(
    tmp_path: Path, database_url: str, peer: str, believed: bool
):
    """The app applies the setting itself (a peer stands in through the ASGI scope)."""
    settings = settings_for(tmp_path, database_url, trusted_proxies="10.0.0.0/8,fd00::/8")
    app = create_app(settings, provider=FakeProvider(), agent=FakeAgent(), background=False)
    with TestClient(app, client=(peer, 40000)) as client:
        token = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()["token"]
        failed = client.post(
            "/api/v1/auth/login",
            json={"username": "admin", "password": "wrong"},
            headers={"X-Forwarded-For": f"{SPOOFED}, {peer}", "X-Forwarded-Proto": "https"},
        )
        assert failed.status_code == 401
        sources = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"}).json()[
            "items"
        ]
    assert sources[0]["source"] == (SPOOFED if believed else peer)
    app.state.context.store.engine.dispose()


@pytest.mark.parametrize("value", ["*", "localhost", "10.0.0.0/33", "127.0.0.1,,bogus"])
def test_a_setting_that_is_not_addresses_is_refused_at_start(value: str):
    with pytest.raises(InvalidInput, match=r"DEV8_TRUSTED_PROXIES: .* is not an address"):
        load_settings(dev=True, trusted_proxies=value)
