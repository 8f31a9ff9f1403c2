"""The server's tunnel endpoint alone, without engine or ssh: bytes pushed up and down
through `Client.open_tunnel` -> the real app under uvicorn (fake provider) -> dev8's agent
relay loop -> a sink/source TCP server, against the same bytes through a plain asyncio TCP
relay in place of the WebSocket hop (the baseline: what any Python relay costs).

Each side runs in a process of its own, so that its CPU time is its own: the server (or the
plain relay), the client, and this process (the agent's relay loop and the sink/source).
Figures: MB/s, and CPU seconds per GB of the server and the client; ratios to the baseline.

    .venv/bin/python benchmarks/tunnel.py [--size-mib 200] [--runs 3] [--ws websockets-sansio]
                                          [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dev8.core.heap import keep_freed_buffers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.fakes: the fake provider the server runs with

SINK_PORT = 2222
CHUNK = 1024 * 1024
PLAIN_READ = 256 * 1024


def cpu_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


# The workspace: dev8's agent relay loop and a sink/source behind it --------------------------
class Workspace:
    """The agent's relay upgrade (protocols section 1, minus the checks) handed to dev8's own
        relay loop (``dev8.agent.relay.Relays``), and behind it a TCP server: a client that says
        ``U`` has everything it sends after that counted (the count is the answer), ``D`` and n
    in 16 digits gets n bytes."""

    def __init__(self, write: int) -> None:
        from dev8.agent.relay import Relays

        self.write = write
        self.relays = Relays()
        self.token = secrets.token_hex(16)
        self.sink = self._listen(self._sink_or_source)
        self.agent = self._listen(self._upgrade)
        self.url = f"http://127.0.0.1:{self.agent.getsockname()[1]}"

    def _listen(self, handler: Any) -> socket.socket:
        server = socket.create_server(("127.0.0.1", 0))

        def accept() -> None:
            while True:
                connection, _ = server.accept()
                threading.Thread(target=handler, args=(connection,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return server

    def _upgrade(self, connection: socket.socket) -> None:
        from dev8.agent.relay import connect_local, prepare_client

        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += connection.recv(1)
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
            b"Upgrade: dev8-relay\r\n\r\n"
        )
        prepare_client(connection)
        self.relays.reserve()
        self.relays.start(connection, connect_local(self.sink.getsockname()[1]))

    def _sink_or_source(self, connection: socket.socket) -> None:
        with connection:
            if connection.recv(1) == b"U":
                size = 0
                while data := connection.recv(CHUNK):
                    size += len(data)
                connection.sendall(str(size).encode())
            else:
                left = int(connection.recv(16, socket.MSG_WAITALL))
                block = os.urandom(self.write)
                while left > 0:
                    left -= connection.send(block[: min(left, self.write)])
                connection.shutdown(socket.SHUT_WR)
                connection.recv(1)


# The server under test (a subprocess) -------------------------------------------------------
def serve(agent_url: str, ws: str, profile: str | None) -> None:
    """The real app under uvicorn with the fake provider, one member and their running
    workspace ``w`` behind ``agent_url``; prints the URL and the member's token, serves until
    stdin closes."""
    import uvicorn
    from tests.fakes import FakeAgent, FakeProvider
    from tests.integration.server.live import ADMIN_PASSWORD, create, http_client, settings_for

    from dev8.server.app import create_app
    from dev8.store.db import sqlite_url
    from dev8.store.store import Store

    keep_freed_buffers()  # as ``dev8 server`` does
    directory = Path(tempfile.mkdtemp(prefix="dev8-tunnel-bench-"))
    database = sqlite_url(directory / "server.db")
    Store.open(database, lock_dir=directory / "locks").engine.dispose()
    provider = FakeProvider()
    provider.agent_url = agent_url
    agent = FakeAgent()  # health checks only: the relay goes to ``agent_url``
    app = create_app(settings_for(directory, database), provider=provider, agent=agent)  # type: ignore[arg-type]
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws=ws)
    server = uvicorn.Server(config)

    def setup() -> None:
        while not server.started:
            time.sleep(0.02)
        admin = http_client(url)
        token = admin.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()["token"]
        admin = http_client(url, token)
        admin.post("/api/v1/users", json={"name": "bob", "password": "bob-password-12345"})
        member_token = admin.post(
            "/api/v1/auth/login", json={"username": "bob", "password": "bob-password-12345"}
        ).json()["token"]
        member = http_client(url, member_token)
        accepted = create(member, "w")
        for operation in accepted["operations"]:
            while member.get(f"/api/v1/operations/{operation['id']}").json()["result"] not in (
                "succeeded",
                "failed",
            ):
                time.sleep(0.05)
        print(json.dumps({"url": url, "token": member_token}), flush=True)
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=setup, daemon=True).start()
    if profile:
        import cProfile

        cProfile.runctx("server.run(sockets=[listener])", globals(), locals(), profile)
    else:
        server.run(sockets=[listener])
    shutil.rmtree(directory, ignore_errors=True)


def serve_plain(agent_url: str, agent_token: str) -> None:
    """The baseline: a plain asyncio TCP relay to the same agent (its handshake by the
    server's own ``open_stream``), reads of 256 KiB, drain per write."""
    from dev8.server.relay import Upstream, open_stream

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(PLAIN_READ):
            writer.write(data)
            await writer.drain()
        writer.write_eof()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        inner_reader, inner_writer = await open_stream(Upstream(agent_url, agent_token, SINK_PORT))
        await asyncio.gather(pipe(reader, inner_writer), pipe(inner_reader, writer))
        inner_writer.close()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=PLAIN_READ)
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"url": f"tcp://127.0.0.1:{port}"}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


# The client (a subprocess) ------------------------------------------------------------------
class _PlainStream:
    def __init__(self, port: int) -> None:
        from dev8.cli.relay import connect_tcp

        self._stream = connect_tcp("127.0.0.1", port)
        self.read, self.write = self._stream.read, self._stream.write
        self.close_write, self.close = self._stream.close_write, self._stream.close


def transfer(url: str, token: str, direction: str, size: int, write: int) -> None:
    """One transfer; prints seconds, this process's CPU seconds and the sizes of the messages
    read."""
    keep_freed_buffers()  # as ``dev8 ssh-proxy`` does
    if url.startswith("tcp://"):
        stream: Any = _PlainStream(int(url.rsplit(":", 1)[1]))
    else:
        from dev8.client import Client

        stream = Client(url, token).open_tunnel("w", SINK_PORT)
    sizes: Counter[int] = Counter()
    block = os.urandom(write)
    started, cpu = time.perf_counter(), time.process_time()
    if direction == "up":
        stream.write(b"U")
        left = size
        while left > 0:
            stream.write(block[: min(left, write)])
            left -= write
        stream.close_write()
        answer = b""
        while data := stream.read():
            answer += data
        assert int(answer) == size, answer
    else:
        stream.write(f"D{size:016d}".encode())
        got = 0
        while data := stream.read():
            got += len(data)
            sizes[len(data)] += 1
        assert got == size, got
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stream.close()
    common = {str(k): v for k, v in sizes.most_common(4)}
    print(json.dumps({"s": elapsed, "cpu": cpu, "reads": sum(sizes.values()), "sizes": common}))


# This process: orchestration ----------------------------------------------------------------
def spawn(*args: str) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"{args[0]} did not start")
    return process, json.loads(line)


def measure(server: subprocess.Popen, info: dict, direction: str, size: int, write: int) -> dict:
    """One transfer by a client process; its figures and the server's CPU seconds."""
    before = cpu_s(server.pid)
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            info["url"],
            info.get("token", ""),
            direction,
            str(size),
            str(write),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out)
    after = cpu_s(server.pid)
    result["server_user"], result["server_sys"] = after[0] - before[0], after[1] - before[1]
    result["server_cpu"] = result["server_user"] + result["server_sys"]
    return result


def run(args: argparse.Namespace) -> None:
    write = args.write_kib * 1024
    workspace = Workspace(write)
    size = args.size_mib * 1024 * 1024
    gb = size / 1e9
    kinds = {
        "plain": ("--serve-plain", workspace.url, workspace.token),
        "tunnel": (
            "--serve",
            workspace.url,
            args.ws,
            *(["--profile", args.profile] if args.profile else []),
        ),
    }
    figures: dict[tuple[str, str], list[dict]] = {}
    processes = {name: spawn(*command) for name, command in kinds.items()}
    try:
        for _ in range(args.runs):
            for direction in ("up", "down"):
                for name, (process, info) in processes.items():
                    figures.setdefault((name, direction), []).append(
                        measure(process, info, direction, size, write)
                    )
    finally:
        for process, _ in processes.values():
            assert process.stdin is not None
            process.stdin.close()
            process.wait(30)
    print(f"{args.size_mib} MiB x {args.runs} runs, uvicorn ws={args.ws}; median of runs")
    for direction in ("up", "down"):
        rows = {}
        for name in kinds:
            results = figures[(name, direction)]
            rows[name] = {
                "MB/s": statistics.median(size / r["s"] / 1e6 for r in results),
                "server CPU s/GB": statistics.median(r["server_cpu"] / gb for r in results),
                "  of which user": statistics.median(r["server_user"] / gb for r in results),
                "client CPU s/GB": statistics.median(r["cpu"] / gb for r in results),
            }
        for key in rows["tunnel"]:
            tunnel, plain = rows["tunnel"][key], rows["plain"][key]
            print(
                f"  {direction:4} {key:16} tunnel {tunnel:7.2f}  plain {plain:7.2f}  "
                f"ratio {tunnel / plain:5.2f}x"
            )
        if direction == "down":
            last = figures[("tunnel", direction)][-1]
            print(f"  down: client reads {last['reads']}, commonest sizes {last['sizes']}")


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        agent_url, ws, *rest = sys.argv[2:]
        return serve(agent_url, ws, rest[1] if rest else None)
    if sys.argv[1:2] == ["--serve-plain"]:
        return serve_plain(*sys.argv[2:4])
    if sys.argv[1:2] == ["--client"]:
        url, token, direction, size, write = sys.argv[2:7]
        return transfer(url, token, direction, int(size), int(write))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ws", default="websockets-sansio")
    parser.add_argument("--profile", help="write the server's cProfile stats here")
    parser.add_argument(
        "--write-kib", type=int, default=1024, help="the size of each write at both ends"
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
