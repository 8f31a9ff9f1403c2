"""Remote access through `dev8 server` against the direct loopback path, measured in the same
run on two workspaces of the same image:

- direct: a local-mode workspace (`dev8 up` without a server): sshd and code-server published
  on 127.0.0.1, reached as local mode reaches them;
- relayed: a server-mode workspace behind `dev8 server` on 127.0.0.1: SSH through the
  ProxyCommand `dev8 ssh-proxy` (`dev8 config-ssh`), the IDE through path mode
  (`/@OWNER/NAME/`, with the browser session cookie), every byte relayed by the server and
  the workspace's agent.

Figures: scp of a 200 MB file (up and down), throughput relayed/direct (goal >= 0.6x); p95
latency of a small static IDE asset (code-server's favicon), relayed/direct (goal <= 3x); p95
round trip of a WebSocket message to an echo server in the workspace reached through
code-server's own port proxy (`/proxy/PORT/`: the IDE's WebSocket path), relayed/direct
(goal <= 3x); 100 such WebSocket sessions held open at once through the server for 60 s, each
echoing a message every 5 s: drops, and the server's resident memory per session.

The machine is shared, so the direct and the relayed path are measured side by side: the
asset requests and WebSocket round trips alternate in blocks of 25; each copy is
timed right after its direct twin, ``--scp-rounds`` times, and the median ratio is the
figure. A burst of other work then slows both paths alike instead of only the one it hit.

    .venv/bin/python benchmarks/relay.py [--size-mib 200] [--scp-rounds 3] [--samples 300]
                                         [--sessions 100] [--hold-s 60]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from dev8.client import Client
from dev8.core.naming import LABEL_OWNER
from dev8.providers.docker.client import connect as docker_connect
from dev8.providers.docker.volumes import remove_volume

ADMIN_PASSWORD = "relay-benchmark-admin-password"
DEV8 = str(Path(sys.executable).parent / "dev8")
ASSET = "/_static/src/browser/media/favicon-dark-support.svg"
ECHO_PORT = 8765
# An echo server with the ws module code-server carries (node is the image's).
ECHO = (
    "const W = require('/opt/code-server/lib/node_modules/code-server/node_modules/ws');"
    f"new W.WebSocketServer({{host: '127.0.0.1', port: {ECHO_PORT}}})"
    ".on('connection', c => c.on('message', (m, b) => c.send(m, {binary: b})));"
)
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cli:
    """The `dev8` command with a home and data directory of its own."""

    def __init__(self, directory: Path, owner: str) -> None:
        self.home = directory / "home"
        self.home.mkdir(parents=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DEV8_")},
            "HOME": str(self.home),
            "DEV8_HOME": str(directory / "data"),
            "LOGNAME": owner,
            "PATH": f"{Path(DEV8).parent}:{os.environ['PATH']}",
        }

    def __call__(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            [DEV8, *args], env=self.env, input=input, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise SystemExit(f"dev8 {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def key(self) -> Path:
        return Path(self.env["DEV8_HOME"]) / "ssh" / "id_ed25519"


class Server:
    def __init__(self, directory: Path, owner: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.owner = owner
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DEV8_")},
            "DEV8_HOME": str(directory / "home"),
            "DEV8_SERVER_DIR": str(directory / "server"),
            "DEV8_ADMIN_USER": owner,
            "DEV8_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        directory.mkdir(parents=True)
        self.log = (directory / "server.log").open("wb")
        self.process = subprocess.Popen(
            [DEV8, "server", "--dev", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("dev8 server did not start")

    def rss_kib(self) -> int:
        """The server's resident memory (its process tree: one uvicorn process)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(
            next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
        )

    def session_cookie(self) -> str:
        answer = httpx.post(
            f"{self.url}/login",
            data={"username": self.owner, "password": ADMIN_PASSWORD, "next": "/"},
        )
        return answer.cookies["dev8_session"]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18]


def timed(argv: list[str], env: dict[str, str]) -> float:
    """Seconds one copy took; ``env`` is the CLI's (the ProxyCommand runs `dev8`)."""
    started = time.perf_counter()
    subprocess.run(argv, check=True, timeout=600, env=env)
    return time.perf_counter() - started


def paired_latencies(
    direct: Callable[[], object], relayed: Callable[[], object], samples: int, block: int = 25
) -> tuple[list[float], list[float]]:
    """Seconds of ``samples`` calls of each, in alternating blocks of ``block`` calls: short
    enough that a burst of other work hits both paths, long enough that what one path's
    processes still do after their answer (acknowledgements, the server's next loop turn)
    lands on at most the first call of the other's block, not on every one."""
    found: tuple[list[float], list[float]] = ([], [])
    while len(found[1]) < samples:
        for call, into in zip((direct, relayed), found, strict=True):
            for _ in range(min(block, samples - len(into))):
                started = time.perf_counter()
                call()
                into.append(time.perf_counter() - started)
    return found


def asset_fetch(client: httpx.Client, url: str) -> Callable[[], object]:
    def fetch() -> None:
        assert client.get(url).status_code == 200, url

    fetch()
    return fetch


def open_echo(url: str, origin: str, cookie: str) -> ClientConnection:
    return connect(
        url, origin=Origin(origin), additional_headers={"Cookie": cookie}, open_timeout=30
    )


def echo_round_trip(websocket: ClientConnection) -> Callable[[], object]:
    def round_trip() -> None:
        websocket.send("ping")
        assert websocket.recv(timeout=30) == "ping"

    for _ in range(20):  # the first ones warm up code-server's proxy
        round_trip()
    return round_trip


def hold_sessions(
    url: str, origin: str, cookie: str, sessions: int, hold_s: float, server: Server
) -> tuple[int, int, int]:
    """(sessions that dropped, echoes answered, server RSS growth in KiB while all open)."""
    with contextlib.ExitStack() as stack:
        before = server.rss_kib()
        sockets = [stack.enter_context(open_echo(url, origin, cookie)) for _ in range(sessions)]
        opened = server.rss_kib()
        drops, answered = _keep_open(sockets, hold_s)
    return drops, answered, opened - before


def _keep_open(sockets: list[ClientConnection], hold_s: float) -> tuple[int, int]:
    """Each session echoes a message every 5 s for ``hold_s``: (dropped, echoes)."""
    drops, answered = 0, 0
    lock = threading.Lock()

    def keep(websocket: ClientConnection) -> None:
        nonlocal drops, answered
        deadline = time.monotonic() + hold_s
        try:
            while time.monotonic() < deadline:
                websocket.send("still there")
                assert websocket.recv(timeout=30) == "still there"
                with lock:
                    answered += 1
                time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        except Exception:  # any failure of a held session is a drop
            with lock:
                drops += 1

    threads = [threading.Thread(target=keep, args=(ws,)) for ws in sockets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return drops, answered


def ratio_line(what: str, relayed: float, direct: float, unit: str, goal: str, met: bool) -> str:
    return (
        f"{what:<34} direct {direct:9.2f} {unit:<5} relayed {relayed:9.2f} {unit:<5} "
        f"= {relayed / direct:5.2f}x; goal {goal} {'met' if met else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--scp-rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--hold-s", type=float, default=60.0)
    args = parser.parse_args()

    owner = f"bench-{secrets.token_hex(3)}"
    docker = docker_connect()
    server: Server | None = None
    with tempfile.TemporaryDirectory(prefix="dev8-relay-bench-") as scratch:
        directory = Path(scratch)
        try:
            local = Cli(directory / "local", owner)
            server = Server(directory / "server", f"{owner}-s")
            remote = Cli(directory / "remote", owner)
            remote("login", server.url, "--user", server.owner, "--password-stdin",
                   input=ADMIN_PASSWORD + "\n")  # fmt: skip
            print("starting the two workspaces...", flush=True)
            local("up", "direct")
            remote("up", "relayed")
            remote("config-ssh")
            direct = json.loads(local("ls", "--json"))[0]
            with Client(server.url) as anonymous:
                token = anonymous.login(server.owner, ADMIN_PASSWORD)["token"]
            with Client(server.url, token=token) as admin:
                relayed_id = admin.workspaces.get("relayed").id
            for container in (f"dev8-{direct['id']}", f"dev8-{relayed_id}"):
                docker.containers.get(container).exec_run(
                    ["/opt/node/bin/node", "-e", ECHO], user="dev8", detach=True
                )
            run(args, local, remote, server, direct)
        finally:
            if server is not None:
                server.stop()
            for label_owner in (owner, f"{owner}-s"):
                label = {"label": f"{LABEL_OWNER}={label_owner}"}
                for container in docker.containers.list(all=True, filters=label):
                    container.remove(force=True)
                for volume in docker.volumes.list(filters=label):
                    remove_volume(volume)  # its loop device and image too
                for network in docker.networks.list(filters=label):
                    network.remove()


def run(args: argparse.Namespace, local: Cli, remote: Cli, server: Server, direct: dict) -> None:
    ssh_port, ide_port = direct["ports"]["ssh"], direct["ports"]["ide"]
    print(f"load average at the start: {load_average()}")

    # SSH throughput: the same file up and down, direct to the published sshd, and through
    # the server with the entry `dev8 config-ssh` wrote.
    payload = Path(local.home) / "payload.bin"
    with payload.open("wb") as out:
        for _ in range(args.size_mib):
            out.write(os.urandom(2**20))
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    direct_scp = [
        "scp", "-q", *SSH_OPTIONS, "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-i", str(local.key()), "-P", str(ssh_port),
    ]  # fmt: skip
    back, back_direct = Path(local.home) / "back.bin", Path(local.home) / "back-direct.bin"
    relayed_scp = ["scp", "-q", *SSH_OPTIONS, "-F", str(remote.home / ".ssh" / "config")]
    copies = {
        "up": (
            [*direct_scp, str(payload), "dev8@127.0.0.1:/tmp/payload.bin"],
            [*relayed_scp, str(payload), "dev8.relayed:/tmp/payload.bin"],
        ),
        "down": (
            [*direct_scp, "dev8@127.0.0.1:/tmp/payload.bin", str(back_direct)],
            [*relayed_scp, "dev8.relayed:/tmp/payload.bin", str(back)],
        ),
    }
    seconds: dict[str, list[tuple[float, float]]] = {"up": [], "down": []}
    for _ in range(args.scp_rounds):
        for what, (direct_argv, relayed_argv) in copies.items():
            pair = (timed(direct_argv, local.env), timed(relayed_argv, remote.env))
            seconds[what].append(pair)
        for copy in (back, back_direct):
            assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest
    size = args.size_mib
    print(f"scp of {size} MiB (throughput, MiB/s; median of {args.scp_rounds} paired copies):")
    for what, pairs in seconds.items():
        d, r = sorted(pairs, key=lambda pair: pair[0] / pair[1])[len(pairs) // 2]  # the median
        ratio = d / r  # relayed throughput / direct throughput
        each = ", ".join(f"{a / b:.2f}" for a, b in pairs)
        verdict = "met" if ratio >= 0.6 else "MISSED"
        print(f"  {what:<32} direct {size / d:9.1f} MiB/s relayed {size / r:9.1f} MiB/s "
              f"= {ratio:5.2f}x ({each}); goal >= 0.6x {verdict}")  # fmt: skip

    # A small static IDE asset: code-server's own, on its published port (its password's
    # cookie is not needed for static files) and through path mode with the session cookie.
    session = server.session_cookie()
    ide_path = f"{server.url}/@{server.owner}/relayed"
    with (
        httpx.Client(timeout=30) as direct_client,
        httpx.Client(cookies={"dev8_session": session}, timeout=30) as relayed_client,
    ):
        direct_asset, relayed_asset = paired_latencies(
            asset_fetch(direct_client, f"http://127.0.0.1:{ide_port}{ASSET}"),
            asset_fetch(relayed_client, f"{ide_path}{ASSET}"),
            args.samples,
        )
    a, b = p95(direct_asset) * 1000, p95(relayed_asset) * 1000
    print(ratio_line("static IDE asset, p95", b, a, "ms", "<= 3x", b <= 3 * a))

    # WebSocket round trips through code-server's port proxy, as the IDE's own WebSockets go.
    password = local("password", "direct").strip()
    login = httpx.post(f"http://127.0.0.1:{ide_port}/login", data={"password": password})
    code_server_cookie = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
    direct_ws = f"ws://127.0.0.1:{ide_port}/proxy/{ECHO_PORT}/"
    relayed_ws = f"ws://127.0.0.1:{server.port}/@{server.owner}/relayed/proxy/{ECHO_PORT}/"
    direct_origin, relayed_origin = f"http://127.0.0.1:{ide_port}", server.url
    relayed_cookie = f"dev8_session={session}"
    with (
        open_echo(direct_ws, direct_origin, code_server_cookie) as direct_echo,
        open_echo(relayed_ws, relayed_origin, relayed_cookie) as relayed_echo,
    ):
        a_rt, b_rt = paired_latencies(
            echo_round_trip(direct_echo), echo_round_trip(relayed_echo), args.samples
        )
    a, b = p95(a_rt) * 1000, p95(b_rt) * 1000
    print(ratio_line("WebSocket round trip, p95", b, a, "ms", "<= 3x", b <= 3 * a))

    # Many sessions held open through the server.
    drops, answered, grown_kib = hold_sessions(
        relayed_ws, relayed_origin, relayed_cookie, args.sessions, args.hold_s, server
    )
    print(
        f"{args.sessions} WebSocket sessions held {args.hold_s:.0f} s through the server: "
        f"{drops} dropped ({'met' if drops == 0 else 'MISSED'}: goal none), {answered} echoes; "
        f"server memory {grown_kib / args.sessions:.0f} KiB per session "
        f"({server.rss_kib() / 1024:.0f} MiB resident)"
    )
    print(f"load average at the end: {load_average()}")


def load_average() -> str:
    """The machine is shared: what else ran is part of the figures."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
