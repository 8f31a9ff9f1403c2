"""Attack: an anonymous client sends a huge body to any route. Before the fix the server
read a 150 MiB body into memory before it answered 401 (FastAPI reads a JSON body before a
route's dependencies check the token). Now a body over ``DEV8_MAX_BODY_BYTES`` is refused
with 413 before anything reads it or checks a token: at once when its ``Content-Length``
says so, at the chunk that goes over the limit when it is sent chunked. The IDE's path mode,
which takes uploads of any size, is let through, and its route refuses a stranger before it
reads a byte.

Each request is written on a raw socket, so that the test controls what is sent: a refusal
that arrives while the body has not been sent (or only in part) proves the server did not
wait for it. Stand-ins (no engine): the real app under uvicorn with the fake provider and
agent of ``tests.fakes``; the limit is set to its lowest, 64 KiB.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.server.live import ADMIN_PASSWORD, Api, serving
from tests.integration.server.signed_in import sign_in

LIMIT = 64 * 1024
HUGE = 150 * 1024 * 1024


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    with serving(tmp_path, database_url, max_body_bytes=LIMIT) as api:
        yield api


def exchange(api: Api, head: str, *parts: bytes) -> tuple[int, dict[str, str], bytes]:
    """Writes ``head`` (a request line and headers) and ``parts``, then reads the answer:
    status, headers (lower-case names) and body. The read has a deadline, so a server that
    waits for a body never sent fails the test instead of hanging it."""
    where = urlsplit(api.url)
    with socket.create_connection((where.hostname, where.port), timeout=20) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in parts:
            sock.sendall(part)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed without an answer: {answer!r}"
            answer += chunk
        top, body = answer.split(b"\r\n\r\n", 1)
        status_line, *lines = top.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            assert chunk, "the server closed in the middle of its answer"
            body += chunk
    return int(status_line.split()[1]), headers, body


def request_head(api: Api, method: str, path: str, *headers: str) -> str:
    host = urlsplit(api.url).netloc
    return "\n".join([f"{method} {path} HTTP/1.1", f"Host: {host}", *headers, ""])


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/workspaces"),
        ("POST", "/api/v1/auth/login"),
        ("PATCH", "/api/v1/users/admin"),
        ("POST", "/login"),
        ("POST", "/workspaces/new"),
        ("PUT", "/api/v1/workspaces/w/ports/8000"),
    ],
)
def test_a_declared_huge_body_is_refused_before_it_is_sent(api: Api, method: str, path: str):
    head = request_head(
        api, method, path, "Content-Type: application/json", f"Content-Length: {HUGE}"
    )
    status, headers, body = exchange(api, head)  # the body is never sent

    assert status == 413  # not 401: no token was asked for
    answer = json.loads(body)
    assert answer["error"] == "payload_too_large"
    assert "\n" not in answer["message"] and "DEV8_MAX_BODY_BYTES" in answer["message"]
    assert headers.get("connection") == "close"


def test_a_token_does_not_lift_the_limit(api: Api):
    token = api.admin().headers["Authorization"]
    head = request_head(
        api, "POST", "/api/v1/workspaces", f"Authorization: {token}", f"Content-Length: {HUGE}"
    )
    assert exchange(api, head)[0] == 413


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/login", "/api/v1/workspaces"])
def test_a_chunked_body_is_cut_at_the_limit(api: Api, path: str):
    """Half again the limit, sent chunked, and the last chunk never: the 413 comes anyway."""
    head = request_head(api, "POST", path, "Transfer-Encoding: chunked")
    parts = [chunk(b" " * (LIMIT // 4)) for _ in range(6)]  # no terminating chunk

    status, _, body = exchange(api, head, *parts)

    assert status == 413 and json.loads(body)["error"] == "payload_too_large"


def test_bodies_within_the_limit_work(api: Api):
    login = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
    padded = login[:-1] + b" " * (LIMIT - len(login)) + b"}"
    assert len(padded) == LIMIT
    head = request_head(
        api, "POST", "/api/v1/auth/login", "Content-Type: application/json",
        f"Content-Length: {len(padded)}",
    )  # fmt: skip
    assert exchange(api, head, padded)[0] == 201
    chunked = request_head(
        api, "POST", "/api/v1/auth/login", "Content-Type: application/json",
        "Transfer-Encoding: chunked",
    )  # fmt: skip
    assert (
        exchange(api, chunked, chunk(padded[:1000]), chunk(padded[1000:]), b"0\r\n\r\n")[0] == 201
    )


def test_the_ides_uploads_are_not_limited_but_a_stranger_is_refused_unread(api: Api):
    """Path mode relays uploads of any size to the owner's IDE: no 413 there, and a request
    without a session is sent to sign in before a byte of its body is read."""
    head = request_head(api, "POST", "/@alice/w/upload", f"Content-Length: {HUGE}")
    status, headers, _ = exchange(api, head)  # the body is never sent

    assert status == 303 and headers["location"].startswith("/login")


def test_a_signed_in_form_over_the_limit_is_cut_quietly(api: Api, caplog: pytest.LogCaptureFixture):
    """A dashboard form read as it streams: 413 at the limit, the page's code never sees a
    truncated form, and no 500 or traceback is logged for it."""
    browser = sign_in(api, "admin", ADMIN_PASSWORD)
    head = request_head(
        api, "POST", "/account/ssh-keys", f"Cookie: dev8_session={browser.cookie}",
        f"X-CSRF-Token: {browser.csrf}", "Content-Type: application/x-www-form-urlencoded",
        "Transfer-Encoding: chunked",
    )  # fmt: skip
    parts = [chunk(b"ssh_keys=" + b"a" * (LIMIT // 2))] + [chunk(b"a" * (LIMIT // 4))] * 4

    status, _, body = exchange(api, head, *parts)

    assert status == 413 and json.loads(body)["error"] == "payload_too_large"
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert api.context.accounts.user("admin").ssh_keys == ""
