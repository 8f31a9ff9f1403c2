"""A real `dev8 server` process, as an operator runs it, for tests that kill and restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dev8.client import Client
from dev8.store.secretbox import new_key
from tests.net import free_port

ADMIN_PASSWORD = "admin-password-for-tests"


class ServerProcess:
    """``python -m dev8 server`` with its own data directory, port and key. Started again
    after a kill, it finds the same database, key and locks."""

    def __init__(self, directory: Path, database_url: str | None = None, **settings: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "server.log"
        self.env = {
            **os.environ,
            "DEV8_HOME": str(directory / "home"),
            "DEV8_PORT": str(self.port),
            "DEV8_SECRET_KEY": new_key(),
            "DEV8_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DEV8_RECONCILE_INTERVAL_S": "0.2",
            "DEV8_OBSERVE_INTERVAL_S": "1",
            **({"DEV8_DATABASE_URL": database_url} if database_url else {}),
            **{f"DEV8_{key.upper()}": value for key, value in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dev8", "server"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"dev8 server exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"dev8 server did not answer:\n{self.log.read_text()[-3000:]}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut."""
        assert self.process is not None
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def admin(self) -> Client:
        with Client(self.url) as anonymous:
            name = self.env.get("DEV8_ADMIN_USER", "admin")
            token = anonymous.login(name, ADMIN_PASSWORD)["token"]
        return Client(self.url, token=token, timeout=60)

    def user(self, name: str, ssh_public_key: str = "") -> Client:
        """A member named ``name`` (their workspaces carry that owner label), logged in."""
        password = f"{name}-password"
        with self.admin() as admin:
            admin.users.create(name, password)
        with Client(self.url) as anonymous:
            token = anonymous.login(name, password)["token"]
        client = Client(self.url, token=token, timeout=60)
        if ssh_public_key:
            client.users.me().update(ssh_keys=ssh_public_key)
        return client
