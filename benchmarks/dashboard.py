"""The dashboard's workspaces page as a ratio to the API's listing of the same workspaces,
measured in the same run.

Starts a real `dev8 server` process (SQLite by default, or ``--database-url``), as `api.py`
does, and writes 2,000 workspace records straight to its database: 1,000 of the admin's and
1,000 of four members'. Then, over HTTP on loopback with the same bare client for both, in
turn (one of each, then again):

- the admin's workspaces page (`GET /workspaces`, the ``dev8_session`` cookie), its first
  page and its last (``?after=``), against the API's listing of the same workspaces with a
  bearer token (`GET /api/v1/workspaces?owner=admin`, the page's size, the same cursor);
- the same page of a member's workspaces, as the admin sees it (``?owner=``).

Goal: p95 of each page at most 2x the API's.

The records have no containers and are recorded as such (``missing``), so that the server's
reconciler finds nothing to change while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import httpx

from api import PASSWORD, latencies, ms, p, start_server
from dev8.core.resources import Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Workspace
from dev8.server.schemas import encode_cursor
from dev8.server.web.dashboard.workspaces import PAGE_SIZE
from dev8.store.db import sqlite_url
from dev8.store.secretbox import SecretBox, new_key
from dev8.store.store import Store

ADMINS = 1_000
MEMBERS = ("ann", "ben", "cat", "dan")
EACH_MEMBER = 250


def record(owner: str, name: str) -> Workspace:
    return Workspace(
        id=secrets.token_hex(6),
        name=name,
        owner=owner,
        image_ref="dev8/workspace:latest",
        image_id="sha256:" + "0" * 64,
        resources=Resources(2, 4096),
        env={"EDITOR": "vim"},
        secrets={"GITHUB_TOKEN": "x", "DEV8_AGENT_TOKEN": "y"},
        desired_state=DesiredState.STOPPED,
        observed_state=ObservedState.MISSING,
        status_message="no container",
    )


def fill(database_url: str, directory: Path, key: str) -> None:
    store = Store.open(database_url, lock_dir=directory / "locks", secret_box=SecretBox(key))
    mine = [record("admin", f"ws-{n:04d}") for n in range(ADMINS)]
    theirs = [record(m, f"ws-{n:04d}") for m in MEMBERS for n in range(EACH_MEMBER)]
    store.add_many(mine + theirs)
    store.engine.dispose()


def sign_in(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """The admin's page headers (session cookie) and API headers (bearer token); the
    members exist as users, so that the admin may name them."""
    with httpx.Client(base_url=url, timeout=60) as client:
        form = client.post("/login", data={"username": "admin", "password": PASSWORD})
        if form.status_code != 303:
            raise SystemExit(f"POST /login answered {form.status_code}")
        token = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        for member in MEMBERS:
            body = {"name": member, "password": f"{member}-password-1234"}
            client.post("/api/v1/users", json=body, headers=bearer).raise_for_status()
    cookie = {"Cookie": f"dev8_session={form.cookies['dev8_session']}", "Accept": "text/html"}
    return cookie, bearer


def pairs(cookie: dict[str, str], bearer: dict[str, str]) -> dict[str, tuple[str, str]]:
    """What is measured: a label, the page's path and the API's path of the same rows."""
    last = ADMINS - ADMINS % PAGE_SIZE - (PAGE_SIZE if ADMINS % PAGE_SIZE == 0 else 0)
    after = f"ws-{last - 1:04d}"
    api = f"/api/v1/workspaces?limit={PAGE_SIZE}"
    return {
        "first page": ("/workspaces", f"{api}&owner=admin"),
        f"after {last}": (
            f"/workspaces?after={after}",
            f"{api}&owner=admin&after={quote(encode_cursor('admin', after))}",
        ),
        "another owner's": (f"/workspaces?owner={MEMBERS[0]}", f"{api}&owner={MEMBERS[0]}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300, help="sequential requests per figure")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="dev8-bench-dashboard-"))
    database_url = args.database_url or sqlite_url(directory / "server.db")
    key = new_key()
    server, url = start_server(directory, database_url, key)
    try:
        fill(database_url, directory, key)
        cookie, bearer = sign_in(url)
        requests: dict[str, tuple[str, dict[str, str]]] = {}
        for label, (page, api) in pairs(cookie, bearer).items():
            requests[f"page, {label}"] = (page, cookie)
            requests[f"API, {label}"] = (api, bearer)
        asyncio.run(latencies(url, requests, 50))  # warm up
        measured = asyncio.run(latencies(url, requests, args.runs))
        kind = database_url.split(":")[0]
        print(
            f"database: {kind}; the admin's {ADMINS} workspaces and {len(MEMBERS)} members' "
            f"{EACH_MEMBER} each; pages of {PAGE_SIZE}; {args.runs} sequential requests each"
        )
        for label in pairs(cookie, bearer):
            page, api = measured[f"page, {label}"], measured[f"API, {label}"]
            for name, samples in (("page", page), ("API ", api)):
                print(f"{name} {label:18} p50 {ms(p(samples, 50))}  p95 {ms(p(samples, 95))}")
            ratio50, ratio95 = p(page, 50) / p(api, 50), p(page, 95) / p(api, 95)
            print(f"{'':23} ratio p50 {ratio50:4.2f}x  p95 {ratio95:4.2f}x  (goal p95 <= 2x)")
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
