"""A "laptop" for the remote-access tests: another machine that reaches only the dev8
server's listening address, and a real `dev8 server` process listening there.

The laptop is a network namespace made by the test (``ip netns add``) joined to this host by
a veth pair on a private /30 of its own (in 10.213.0.0/16, away from Docker's address pools).
The namespace has no default route: the only address it can reach is this host's end of the
pair, where the server listens, so anything that works from the laptop works through the
server and nothing else. The laptop's programs (the `dev8` command, OpenSSH, Chromium) run
with ``ip netns exec`` and a home directory of their own (their ~/.ssh, dev8's data
directory with its login file), so nothing of this host's user leaks into them.

The server is ``dev8 server --dev --host <host end> --port <free>`` on the real Docker
provider, with its own server directory, an admin named after this session's owner label
(so the session's cleanup by label removes whatever it leaves), and an admin password.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.models.containers
import httpx

from dev8.client import Client
from dev8.core.naming import LABEL_OWNER
from tests.integration.owned import remove_owned
from tests.net import free_port

ADMIN_PASSWORD = "laptop-admin-password-for-tests"
# 10.213.0.0/16: in no Docker default address pool (172.17-31/16, 192.168/16) and not on
# this host's networks; each laptop takes a /30 of it that no interface holds yet.
LAPTOP_NETWORK = ipaddress.ip_network("10.213.0.0/16")
VENV_BIN = Path(sys.executable).parent


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 of ``LAPTOP_NETWORK`` that no interface of this host uses (another laptop of a
    parallel run may hold one)."""
    used = _ip("-4", "-o", "addr", "show").stdout
    while True:
        index = secrets.randbelow(LAPTOP_NETWORK.num_addresses // 4)
        subnet = ipaddress.ip_network(
            (int(LAPTOP_NETWORK.network_address) + 4 * index, 30), strict=True
        )
        assert isinstance(subnet, ipaddress.IPv4Network)
        if all(f" {host}/" not in used for host in subnet.hosts()):
            return subnet


@dataclass
class Laptop:
    """Another machine: a network namespace that reaches only ``host_address``."""

    namespace: str
    host_address: str  # this host's end of the veth pair: the only address the laptop reaches
    address: str  # the laptop's own end
    home: Path  # $HOME on the laptop; dev8's data directory is home/.dev8

    @property
    def data(self) -> Path:
        return self.home / ".dev8"

    @property
    def ssh_config(self) -> Path:
        """The laptop user's ~/.ssh/config. OpenSSH finds ~ from the password database, not
        $HOME, so the tests pass it with ``-F``: the file `dev8 config-ssh` wrote, as is."""
        return self.home / ".ssh" / "config"

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment: the project's virtualenv first on PATH (so `dev8`, which
        `config-ssh` writes into the ProxyCommand, is found), the laptop's home, no dev8
        server variable of this host's."""
        return {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "DEV8_HOME": str(self.data),
            "USER": "laptop",
            "LOGNAME": "laptop",
            "LANG": "C.UTF-8",
            "COLUMNS": "200",
            # A warm process started in the namespace would keep it (and its veth) alive
            # for minutes after the test deletes it.
            "DEV8_WARM": "off",
            **extra,
        }

    def argv(self, args: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *args]

    def run(
        self,
        *args: str,
        input: bytes | str | None = None,
        timeout: float = 120.0,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """``args`` run on the laptop; output as bytes; an AssertionError naming the command
        and its stderr when it fails and ``check``."""
        data = input.encode() if isinstance(input, str) else input
        result = subprocess.run(
            self.argv(args),
            input=data,
            capture_output=True,
            timeout=timeout,
            env=env or self.env(),
            cwd=self.home,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"on the laptop, {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout.decode(errors='replace')[-2000:]}\n"
                f"{result.stderr.decode(errors='replace')[-3000:]}"
            )
        return result

    def popen(self, *args: str, stdout: Any = None, stderr: Any = None) -> subprocess.Popen[bytes]:
        """``args`` started on the laptop in the background (the caller ends it)."""
        return subprocess.Popen(
            self.argv(args), env=self.env(), cwd=self.home, stdout=stdout, stderr=stderr
        )

    def dev8(
        self, *args: str, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[bytes]:
        return self.run("dev8", *args, input=input, timeout=timeout)

    def ssh(self, host: str, *command: str) -> subprocess.CompletedProcess[bytes]:
        """Real OpenSSH with the laptop's ~/.ssh/config (``-F``), never asking anything."""
        return self.run("ssh", "-F", str(self.ssh_config), "-o", "BatchMode=yes", host, *command)


@contextlib.contextmanager
def laptop(directory: Path) -> Iterator[Laptop]:
    """A laptop for as long as the block runs; its namespace and veth pair are removed
    afterwards, whatever happened."""
    tag = secrets.token_hex(3)
    namespace, host_side, laptop_side = f"dev8-laptop-{tag}", f"d8lh{tag}", f"d8ll{tag}"
    subnet = _free_subnet()
    host_address, laptop_address = (str(host) for host in subnet.hosts())
    home = directory / "laptop-home"
    home.mkdir(mode=0o700)
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", host_side, "type", "veth", "peer", "name", laptop_side)
        _ip("link", "set", laptop_side, "netns", namespace)
        _ip("addr", "add", f"{host_address}/30", "dev", host_side)
        _ip("link", "set", host_side, "up")
        inside = ("netns", "exec", namespace, "ip")
        _ip(*inside, "addr", "add", f"{laptop_address}/30", "dev", laptop_side)
        _ip(*inside, "link", "set", laptop_side, "up")
        _ip(*inside, "link", "set", "lo", "up")  # the laptop's own 127.0.0.1 (port-forward)
        yield Laptop(namespace, host_address, laptop_address, home)
    finally:
        _ip("link", "del", host_side, check=False)  # takes its peer with it
        _ip("netns", "del", namespace, check=False)


@dataclass
class RemoteServer:
    """A real ``dev8 server`` process listening on ``address`` only."""

    directory: Path
    address: str
    owner: str  # the admin's name: the owner label of every workspace it makes
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def start(self, timeout: float = 60.0) -> RemoteServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.address)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DEV8_")},
            "DEV8_HOME": str(self.directory / "home"),
            "DEV8_SERVER_DIR": str(self.directory / "server"),
            "DEV8_ADMIN_USER": self.owner,
            "DEV8_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DEV8_OBSERVE_INTERVAL_S": "2",
            **{f"DEV8_{key.upper()}": value for key, value in self.settings.items()},
        }
        listen = ["--host", self.address, "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "dev8"), "server", "--dev", *listen],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"dev8 server exited:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"dev8 server did not answer on {self.url}:\n{self.tail()}")

    def tail(self, size: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)

    def admin(self) -> Client:
        """The admin, through the SDK from this host."""
        with Client(self.url) as anonymous:
            token = anonymous.login(self.owner, ADMIN_PASSWORD)["token"]
        return Client(self.url, token=token, timeout=120)

    def admin_token(self) -> str:
        with Client(self.url) as anonymous:
            return str(anonymous.login(self.owner, ADMIN_PASSWORD)["token"])


def remove_owner_objects(client: docker.DockerClient, owner: str) -> None:
    """Containers, volumes, images and networks labelled with ``owner``."""
    remove_owned(client, owner)
    for network in client.networks.list(filters={"label": f"{LABEL_OWNER}={owner}"}):
        with contextlib.suppress(docker.errors.APIError):
            network.remove()


@contextlib.contextmanager
def remote_server(
    directory: Path,
    address: str,
    owner: str,
    client: docker.DockerClient,
    port: int = 0,
    **settings: str,
) -> Iterator[RemoteServer]:
    """A started server; stopped first at the end (a running one would bring back what it
    should run), then everything its owner has on the engine is removed."""
    server = RemoteServer(directory, address, owner, settings, port)
    try:
        yield server.start()
    finally:
        server.stop()
        remove_owner_objects(client, owner)


def signed_in_laptop(the_laptop: Laptop, server: RemoteServer) -> None:
    """`dev8 login` on the laptop to ``server`` as its admin (the password from stdin)."""
    the_laptop.dev8(
        "login", server.url, "--user", server.owner, "--password-stdin", input=ADMIN_PASSWORD + "\n"
    )


def unique_owner(base: str) -> str:
    return f"{base}-{secrets.token_hex(2)}"


def up_from_laptop(the_laptop: Laptop, server: RemoteServer, name: str) -> str:
    """``name`` created and started from the laptop (`dev8 up`), running."""
    the_laptop.dev8("up", name, timeout=300)
    with server.admin() as admin:
        assert admin.workspaces.get(name).reload().state == "running"
    return name


def workspace_container(
    client: docker.DockerClient, server: RemoteServer, name: str
) -> docker.models.containers.Container:
    with server.admin() as admin:
        workspace_id = admin.workspaces.get(name).id
    return client.containers.get(f"dev8-{workspace_id}")


BROWSER_SCRIPT = Path(__file__).with_name("browser_session.py")


def browse(the_laptop: Laptop, artifacts: Path, **spec: str) -> dict[str, Any]:
    """``browser_session.py`` run on the laptop with ``spec``: what it reports. A failed
    session's error, screenshot and page are named in the AssertionError."""
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = (sys.executable, str(BROWSER_SCRIPT), json.dumps({**spec, "artifacts": str(artifacts)}))
    result = the_laptop.run(*argv, timeout=300, check=False)
    lines = result.stdout.decode(errors="replace").strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    if result.returncode != 0 or "error" in report:
        raise AssertionError(
            f"the browser session failed: {report.get('error')}; see {artifacts}\n"
            f"{result.stderr.decode(errors='replace')[-2000:]}"
        )
    return dict(report)


def read_in_container(container: docker.models.containers.Container, path: str) -> bytes | None:
    """``path``'s content as dev8 sees it in the workspace, None when it is not there."""
    code, output = container.exec_run(["cat", path], user="dev8")
    return bytes(output) if code == 0 else None
