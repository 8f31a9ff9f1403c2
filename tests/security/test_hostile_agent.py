"""Attack (issue 16, item 3): a member, root in their workspace, replaces its agent with one
whose answers are built to hurt the server's agent client: numbers that overflow, wrong
types, a reply trickled one byte at a time, a 256 MiB reply. The client must end every
request at its deadline, read at most its cap, and refuse a malformed answer with one line.

The agent is ``tests.security.hostile_agent`` (a stand-in on loopback sockets: the project's
``tests.standins.StandInAgent`` speaks the relay, not ``/status``); the client is the real
one. Each test failed before the fix (the report of issue 16 lists how)."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dev8.core.errors import ProviderError
from dev8.service.agent_client import STATUS_LIMIT, AgentClient
from tests.security.hostile_agent import HostileAgent, answers, streams, trickles

DEADLINE_S = 1.5
BOUND_S = DEADLINE_S + 2  # a bound, not a benchmark
TOKEN = "token"


@pytest.fixture
def client() -> AgentClient:
    return AgentClient(timeout=DEADLINE_S)


def hostile(behaviour: Any) -> Iterator[HostileAgent]:
    with HostileAgent(behaviour) as agent:
        yield agent


def outcome_within(call: Callable[[], Any], seconds: float) -> tuple[bool, Any]:
    """Run ``call`` in a thread: whether it ended within ``seconds``, and what it returned or
    raised. A call that does not end is left to the stand-in's closing."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), (result[0] if result else None)


def assert_one_line_refusal(outcome: Any) -> None:
    assert isinstance(outcome, ProviderError), f"not refused: {outcome!r}"
    assert "\n" not in outcome.message and len(outcome.message) < 300


BAD_STATUSES = {
    "1e999": b'{"activity": {"last_activity_at": 1e999}}',
    "-1e999": b'{"activity": {"last_activity_at": -1e999}}',
    "NaN": b'{"activity": {"last_activity_at": NaN}}',
    "negative": b'{"activity": {"last_activity_at": -5}}',
    "far future": b'{"activity": {"last_activity_at": 1e11}}',
    "a string time": b'{"activity": {"last_activity_at": "yesterday"}}',
    "activity a list": b'{"activity": [1]}',
    "health a number": b'{"health": 5}',
    "negative sessions": b'{"activity": {"ssh_sessions": -1}}',
    "sessions a float": b'{"activity": {"ssh_sessions": 1.5}}',
    "services a list": b'{"services": ["code-server"]}',
    "restarts a string": b'{"services": {"sshd": {"state": "running", "restarts": "x"}}}',
    "used bytes negative": b'{"disk": {"home": {"used_bytes": -1}}}',
    "host keys not strings": b'{"ssh_host_keys": [1, 2]}',
    "a long health": json.dumps({"health": "x" * 100_000}).encode(),
    "too many services": json.dumps(
        {"services": {f"s{n}": {"state": "running"} for n in range(10_000)}}
    ).encode(),
    "not an object": b"[1, 2, 3]",
    "not JSON": b"<html>",
    "deeply nested": b'{"packages": {"restore": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}",
}


@pytest.mark.parametrize("body", BAD_STATUSES.values(), ids=BAD_STATUSES.keys())
def test_a_malformed_status_is_refused_in_one_line(client: AgentClient, body: bytes):
    """Attack: /status answers with numbers that overflow ``datetime`` (``1e999`` raised an
    OverflowError that aborted every observation pass), NaN, times before 1970 or centuries
    ahead, wrong types, unbounded strings and lists. Before the fix most came back as the
    client's answer unchecked (and a nesting of 50 000 lists raised RecursionError)."""
    with HostileAgent(answers(body)) as agent:
        ended, outcome = outcome_within(lambda: client.status(agent.url, TOKEN), BOUND_S)
    assert ended
    assert_one_line_refusal(outcome)


def test_a_reply_trickled_one_byte_at_a_time_ends_at_the_deadline(client: AgentClient):
    """Attack: the reply, status line included, comes one byte every 0.5 s, each well within
    the per-read timeout, for minutes. Before the fix the client waited for all of it (the
    per-read timeout never tripped), holding the server's reconciler thread."""
    with HostileAgent(trickles(0.5)) as agent:
        started = time.monotonic()
        ended, outcome = outcome_within(lambda: client.status(agent.url, TOKEN), BOUND_S)
        assert ended, f"still reading after {time.monotonic() - started:.1f} s"
        assert agent.requests == 1
    assert_one_line_refusal(outcome)
    assert "did not answer within" in outcome.message


def test_a_health_check_trickled_ends_at_the_deadline(client: AgentClient):
    """Attack: the same trickle on /health, which the server polls while a workspace starts."""
    with HostileAgent(trickles(0.5)) as agent:
        ended, outcome = outcome_within(lambda: client.health(agent.url), BOUND_S)
    assert ended
    assert isinstance(outcome, str) and "\n" not in outcome


def test_a_256_mib_reply_is_read_no_further_than_the_cap(client: AgentClient):
    """Attack: /status answers 256 MiB (made as it is sent: never held by the test). Before
    the fix the client read all of it (the server grew by 710 MiB). Now it reads at most the
    cap and one byte, and refuses: what it held is bounded (tracemalloc's peak), and the
    stand-in could not push more than the cap plus the sockets' buffers."""
    total = 256 * 1024 * 1024
    with HostileAgent(streams(total)) as agent:
        tracemalloc.start()
        try:
            ended, outcome = outcome_within(lambda: client.status(agent.url, TOKEN), 30)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert ended
        assert_one_line_refusal(outcome)
        assert "larger than" in outcome.message
        assert peak < 4 * STATUS_LIMIT, f"held {peak / 2**20:.0f} MiB"
        assert agent.sent < 64 * 1024 * 1024, f"sent {agent.sent / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    "body",
    [b"[1]", b'{"reason": ' + json.dumps("\x1b[2J" + "y" * 100_000).encode() + b"}", b"{"],
    ids=["not an object", "a huge reason with escapes", "not JSON"],
)
def test_an_unhealthy_answer_gives_a_short_printable_reason(client: AgentClient, body: bytes):
    """Attack: /health answers 503 with a list (before the fix: AttributeError out of the
    client), a 100 KB reason with terminal escapes, or broken JSON."""
    with HostileAgent(answers(body, status=503)) as agent:
        ended, outcome = outcome_within(lambda: client.health(agent.url), BOUND_S)
    assert ended
    assert isinstance(outcome, str), outcome
    assert len(outcome) <= 300 and outcome.isprintable()


def test_a_well_formed_status_passes(client: AgentClient):
    """Not an attack: the shape the real agent answers (``dev8.agent.__main__``) passes."""
    status = {
        "agent": {
            "version": "0.1.0",
            "started_at": time.time() - 5,
            "uptime_s": 5.0,
            "environment_id": "abc",
            "pid": 1,
        },
        "health": None,
        "services": {
            "sshd": {
                "state": "running",
                "pid": 12,
                "restarts": 0,
                "started_at": time.time(),
                "last_exit_code": -9,
                "message": "",
            }
        },
        "activity": {
            "ssh_sessions": 1,
            "ide_connections": 0,
            "last_ssh_at": time.time() - 1,
            "last_ide_at": None,
            "code_server_heartbeat_at": None,
            "last_activity_at": time.time() - 1,
        },
        "disk": {
            "home": {
                "path": "/home/dev8",
                "fs_total_bytes": 10**12,
                "fs_free_bytes": 10**11,
                "used_bytes": 123,
                "measured_at": time.time(),
                "quota_bytes": 10**9,
                "quota_percent": 0,
                "quota_level": "ok",
            }
        },
        "ssh_host_keys": ["ssh-ed25519 AAAA"],
        "warnings": ["home is 91% full"],
        "packages": {"recorded": 2, "running": False, "restore": {"status": "complete"}},
        "password_generated": True,
        "loopback_only": False,
        "relays_open": 0,
        "dotfiles": {"repo": "https://x/y", "result": "installed", "log": "~/.dotfiles.log"},
    }
    with HostileAgent(answers(json.dumps(status).encode())) as agent:
        assert client.status(agent.url, TOKEN) == status
