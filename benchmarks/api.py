"""REST API timings as ratios to an unauthenticated `GET /healthz` measured in the same run.

Starts a real `dev8 server` process (SQLite by default, or ``--database-url``), puts 10,000
workspace records in its database, then measures over HTTP on loopback:

- listing: p50/p95 latency of one page (50) of the 10,000 workspaces, first page and a page
  deep in the list (through the cursor), against `/healthz` measured alone and in turn with
  the listings (one of each, then again: the same moments of a noisy machine, but a
  `/healthz` right after a listing is slower than one after another); goal: p95 under 10x;
- concurrency: throughput of 200 concurrent authenticated clients (asking who they are, and
  listing a page), against 200 concurrent clients calling `/healthz`; goal: no errors.

The records are written straight to the database: they have no containers, and are recorded
as such (``missing``), so that the server's reconciler, which runs throughout, finds nothing
to change.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Workspace
from dev8.store.db import sqlite_url
from dev8.store.secretbox import SecretBox, new_key
from dev8.store.store import Store

RECORDS = 10_000
PAGE = 50
CONCURRENCY = 200
PASSWORD = "benchmark-admin-password"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(directory: Path, database_url: str, key: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DEV8_HOME": str(directory),
        "DEV8_PORT": str(port),
        "DEV8_SECRET_KEY": key,
        "DEV8_ADMIN_PASSWORD": PASSWORD,
        "DEV8_DATABASE_URL": database_url,
    }
    log = (directory / "server.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "dev8", "server"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server did not start; see {directory / 'server.log'}")


def fill(database_url: str, directory: Path, key: str, owners: int = 20) -> None:
    store = Store.open(database_url, lock_dir=directory / "locks", secret_box=SecretBox(key))
    prefix = f"bench-{secrets.token_hex(3)}"
    store.add_many(
        [
            Workspace(
                id=secrets.token_hex(6),
                name=f"ws-{n:05d}",
                owner=f"{prefix}-{n % owners:02d}",
                image_ref="dev8/workspace:latest",
                image_id="sha256:" + "0" * 64,
                resources=Resources(2, 4096),
                env={"EDITOR": "vim"},
                secrets={"GITHUB_TOKEN": "x", "DEV8_AGENT_TOKEN": "y"},
                desired_state=DesiredState.STOPPED,
                observed_state=ObservedState.MISSING,
                status_message="no container",
            )
            for n in range(RECORDS)
        ]
    )
    store.engine.dispose()


class Connection:
    """A bare HTTP/1.1 keep-alive connection: a few microseconds of client per request, so
    that the figures are the server's (httpx's own overhead, about 0.5 ms a request and far
    more with 200 connections in one pool, would otherwise be most of what is measured)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def get(self, path: str, headers: dict[str, str]) -> int:
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        self.writer.close()


async def latencies(
    url: str, requests: dict[str, tuple[str, dict[str, str]]], runs: int
) -> dict[str, list[float]]:
    """Sequential latencies of each request, one connection each, taken in turn (one of
    each, then again) so that every figure sees the same moments of a noisy machine."""
    connections = {label: await Connection.open(url) for label in requests}
    samples: dict[str, list[float]] = {label: [] for label in requests}
    try:
        for _ in range(runs):
            for label, (path, headers) in requests.items():
                started = time.perf_counter()
                status = await connections[label].get(path, headers)
                samples[label].append(time.perf_counter() - started)
                if status != 200:
                    raise SystemExit(f"GET {path} answered {status}")
    finally:
        for connection in connections.values():
            connection.close()
    return samples


def p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


async def burst(url: str, path: str, headers: dict[str, str], each: int) -> tuple[float, int, int]:
    """``CONCURRENCY`` clients at once, each on its own connection, ``each`` requests
    apiece: (requests per second, requests, errors)."""
    errors = 0

    async def one_client() -> None:
        nonlocal errors
        try:
            connection = await Connection.open(url)
        except OSError:
            errors += each
            return
        try:
            for _ in range(each):
                errors += await connection.get(path, headers) != 200
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(CONCURRENCY)))
    seconds = time.perf_counter() - started
    total = CONCURRENCY * each
    return total / seconds, total, errors


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.2f} ms"


def last_page_cursor(url: str, headers: dict[str, str]) -> str:
    """The cursor after the first 9,950 workspaces, walked to 200 at a time."""
    cursor = None
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for _ in range((RECORDS - PAGE) // 200):
            params = {"limit": 200, **({"after": cursor} if cursor else {})}
            cursor = client.get("/api/v1/workspaces", params=params).json()["next"]
        params = {"limit": (RECORDS - PAGE) % 200, "after": cursor}
        return client.get("/api/v1/workspaces", params=params).json()["next"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500, help="sequential requests per figure")
    parser.add_argument("--each", type=int, default=5, help="requests per concurrent client")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="dev8-bench-api-"))
    database_url = args.database_url or sqlite_url(directory / "server.db")
    key = new_key()
    server, url = start_server(directory, database_url, key)
    try:
        started = time.perf_counter()
        fill(database_url, directory, key)
        print(f"{RECORDS} workspace records written in {time.perf_counter() - started:.1f} s")
        token = httpx.post(
            f"{url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        first = f"/api/v1/workspaces?limit={PAGE}"
        deep = f"/api/v1/workspaces?limit={PAGE}&after={last_page_cursor(url, headers)}"
        health = "/healthz"
        requests = {
            "baseline": (health, {}),
            "first page": (first, headers),
            "page after 9,950": (deep, headers),
        }
        asyncio.run(latencies(url, requests, 100))  # warm up
        alone = asyncio.run(latencies(url, {"baseline": requests["baseline"]}, args.runs))
        measured = asyncio.run(latencies(url, requests, args.runs))
        kind = database_url.split(":")[0]
        print(f"database: {kind}, {RECORDS} workspaces, {args.runs} sequential requests each")
        baselines = {"alone": alone["baseline"], "in turn": measured.pop("baseline")}
        for label, samples in baselines.items():
            print(
                f"{'GET /healthz (baseline, ' + label + ')':32} p50 {ms(p(samples, 50))}  "
                f"p95 {ms(p(samples, 95))}"
            )
        for label, samples in measured.items():
            p50, p95 = p(samples, 50), p(samples, 95)
            ratios = "  ".join(
                f"{name}: p50 {p50 / p(base, 50):4.1f}x p95 {p95 / p(base, 95):4.1f}x"
                for name, base in baselines.items()
            )
            print(f"{'list ' + str(PAGE) + ', ' + label:32} p50 {ms(p50)}  p95 {ms(p95)}")
            print(f"{'':32} ratio to /healthz {ratios}  (goal p95 < 10x)")
        rate_h, total_h, errors_h = asyncio.run(burst(url, health, {}, args.each))
        print(f"{CONCURRENCY} concurrent clients, {args.each} requests each:")
        print(f"  {'GET /healthz (baseline)':34} {rate_h:7.0f} req/s  errors {errors_h}/{total_h}")
        for label, path in (
            ("authenticated GET /users/me", "/api/v1/users/me"),
            (f"authenticated list of {PAGE}", first),
        ):
            rate, total, errors = asyncio.run(burst(url, path, headers, args.each))
            print(
                f"  {label:34} {rate:7.0f} req/s  errors {errors}/{total}   "
                f"ratio {rate / rate_h:4.2f}x  (goal: no errors)"
            )
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
