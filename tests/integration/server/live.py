"""The real application under a real uvicorn, on a free loopback port, with the fake
provider and agent of ``tests.fakes`` (no engine), and ways to talk to it and to watch its
reconciler."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from dev8.core.images import workspace_image
from dev8.server.app import create_app
from dev8.server.context import ServerContext
from dev8.server.main import transport_options
from dev8.server.settings import Settings
from dev8.store.secretbox import new_key
from tests.fakes import IMAGES, FakeAgent, FakeProvider

ADMIN_PASSWORD = "admin-password-for-tests"
IMAGE = "dev8/workspace:test"
POLL_S = 0.02
# One TLS context for every client: making one loads the CA bundle (40 ms of CPU, a tenth of
# the authorization matrix's time), and the test servers speak plain HTTP anyway.
_TLS = ssl.create_default_context()


def http_client(url: str, token: str | None = None) -> httpx.Client:
    """A client of the server at ``url``, as ``token``'s holder (anonymous without)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, timeout=30, headers=headers, verify=_TLS)


def settings_for(directory: Path, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret_key": new_key(),
        "admin_password": ADMIN_PASSWORD,
        "server_dir": directory / "server",
        "database_url": database_url,
        "reconcile_interval_s": 0.05,
        "observe_interval_s": 0.2,
        "shutdown_grace_s": 2.0,
        "db_pool_size": 10,
        # Members may run only these (DEV8_IMAGES): the default first, then the fake's.
        "images": ",".join([workspace_image(), *IMAGES]),
        **overrides,
    }
    return Settings(**values)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, message: str = "condition"):
    """``predicate``'s first true value, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(POLL_S)
    raise AssertionError(f"{message} not reached within {timeout} s")


def create(client: httpx.Client, name: str, **fields: Any) -> dict:
    """Ask for a workspace; the answer (202: the workspace and its queued operations)."""
    answer = client.post("/api/v1/workspaces", json={"name": name, "image": IMAGE, **fields})
    assert answer.status_code == 202, answer.text
    return answer.json()


class PromptServer(uvicorn.Server):
    """uvicorn's server, stopped as soon as asked. uvicorn's own looks at ``should_exit`` every
    0.1 s, then gives the connections it closes 0.1 s before it looks again: 0.2 s of waiting
    per test server, a fifth of the server tests' time (and, under ``-n 2``, a core idle).
    Here ``stop`` wakes the loop, and the shutdown is uvicorn's but looks every 5 ms."""

    _loop: asyncio.AbstractEventLoop | None = None
    _asked: asyncio.Event

    async def main_loop(self) -> None:
        self._asked = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):  # uvicorn's checks and Date header, each 0.1 s
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._asked.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()

    def stop(self) -> None:
        """Ask the server to stop, from another thread (one that has not started its loop
        yet sees ``should_exit`` at its first look)."""
        self.should_exit = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._asked.set)


class LiveServer:
    """The app under a real uvicorn in a thread, on a port the kernel picked."""

    def __init__(self, app: Any) -> None:
        self.app = app
        # IPPROTO_TCP: asyncio turns Nagle off only for such sockets (else a 40 ms stall per
        # small answer).
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        # The event loop and protocols of `dev8 server` (uvloop where installed).
        config = uvicorn.Config(app, log_level="warning", lifespan="on", **transport_options())
        self.server = PromptServer(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(
            lambda: self.server.started or not self.thread.is_alive(),
            timeout=30,
            message="the test server's start",
        )
        if not self.server.started:
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.stop()
        self.thread.join(15)
        self.socket.close()

    @property
    def context(self) -> ServerContext:
        return self.app.state.context


class ReconcilerWatch:
    """Counts what the running reconciler has done, so that a test can wait for the event
    that proves a negative ("nothing happened") instead of sleeping: observation passes
    completed, and the runner's tries per workspace (a try that returns None found the
    workspace busy or had nothing to run).

    It wraps two methods of the running instances; the reconciler's loop and workers look
    them up at every call, so the wrappers see every pass and try from then on."""

    def __init__(self, reconciler: Any) -> None:
        self.started = self.finished = 0
        self.tries: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        observe_all, run_next = reconciler.observe_all, reconciler.runner.run_next

        def counted_observe_all(wait_for_all: bool = True) -> list[Future[None]]:
            with self._lock:
                self.started += 1
            try:
                pending = observe_all(wait_for_all)
            except BaseException:
                self._pass_ended()
                raise
            # A pass has ended when its last observation has (the loop does not wait).
            left = [len(pending)]

            def one_ended(_future: Future[None]) -> None:
                with self._lock:
                    left[0] -= 1
                    ended = left[0] == 0
                if ended:
                    self._pass_ended()

            if not pending:
                self._pass_ended()
            for future in pending:
                future.add_done_callback(one_ended)
            return pending

        def recorded_run_next(workspace_id: str) -> Any:
            result = run_next(workspace_id)
            with self._lock:
                self.tries.setdefault(workspace_id, []).append(result)
            return result

        reconciler.observe_all = counted_observe_all
        reconciler.runner.run_next = recorded_run_next

    def _pass_ended(self) -> None:
        with self._lock:
            self.finished += 1

    def observed(self, passes: int = 2, timeout: float = 20.0) -> None:
        """Wait until ``passes`` observation passes that began after this call are done."""
        with self._lock:
            target = self.started + passes
        wait_for(lambda: self.finished >= target, timeout, f"{passes} observation passes")

    def tried(self, workspace_id: str, times: int = 1, timeout: float = 20.0) -> list[Any]:
        """Wait until the runner has tried ``workspace_id`` ``times`` more times from now;
        what those tries returned."""
        before = len(self.tries.get(workspace_id, []))
        wait_for(
            lambda: len(self.tries.get(workspace_id, [])) >= before + times,
            timeout,
            f"{times} tries of workspace {workspace_id}",
        )
        return self.tries[workspace_id][before : before + times]


@dataclass
class Api:
    """A running server and ways to talk to it as different people."""

    live: LiveServer
    provider: FakeProvider
    agent: FakeAgent
    watch: ReconcilerWatch
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def context(self) -> ServerContext:
        return self.live.context

    def anonymous(self) -> httpx.Client:
        return self.client(None)

    def client(self, token: str | None) -> httpx.Client:
        """A client as ``token``'s holder, closed with the server."""
        client = http_client(self.url, token)
        self.clients.append(client)
        return client

    def login(self, name: str, password: str) -> httpx.Client:
        answer = self.anonymous().post(
            "/api/v1/auth/login", json={"username": name, "password": password}
        )
        assert answer.status_code == 201, answer.text
        return self.client(answer.json()["token"])

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
        def finished() -> dict | None:
            operation = client.get(f"/api/v1/operations/{operation_id}").json()
            return operation if operation["result"] in ("succeeded", "failed") else None

        return wait_for(finished, timeout, f"the end of operation {operation_id}")

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
    settings = settings_for(directory, database_url, **overrides)
    app = create_app(settings, provider=provider, agent=agent)
    with LiveServer(app) as live:
        api = Api(live, provider, agent, ReconcilerWatch(app.state.reconciler))
        try:
            yield api
        finally:
            for client in api.clients:
                client.close()
    api.context.store.engine.dispose()
