"""``UpstreamCache``: a workspace's agent address is looked up once per ``ttl``, and a
refusal (no such workspace, not running) is never kept."""

from __future__ import annotations

import asyncio

import pytest

from dev8.core.errors import Conflict
from dev8.server.relay import Upstream, UpstreamCache


class Lookups:
    """A stand-in for the store query: counts its calls, refuses while ``refusing``."""

    def __init__(self) -> None:
        self.calls = 0
        self.refusing = False

    def __call__(self, _context, owner: str, name: str, port: int) -> Upstream:
        self.calls += 1
        if self.refusing:
            raise Conflict(f"workspace {name} is stopped")
        return Upstream(f"http://127.0.0.1:{self.calls}", "token", port)


def test_an_answer_is_kept_for_its_ttl_only():
    now = [0.0]
    lookups = Lookups()
    cache = UpstreamCache(None, lookups, ttl=2.0, clock=lambda: now[0])  # type: ignore[arg-type]

    async def get(port: int = 8080) -> Upstream:
        return await cache.get("alice", "w", port)

    first = asyncio.run(get())
    now[0] = 1.9
    assert asyncio.run(get()) == first and lookups.calls == 1
    assert asyncio.run(get(3000)).port == 3000 and lookups.calls == 2  # another port
    now[0] = 2.0
    assert asyncio.run(get()) != first and lookups.calls == 3


def test_a_refusal_is_never_kept():
    lookups = Lookups()
    lookups.refusing = True
    cache = UpstreamCache(None, lookups, ttl=60.0)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(Conflict):
            asyncio.run(cache.get("alice", "w", 8080))
    lookups.refusing = False
    assert asyncio.run(cache.get("alice", "w", 8080)).port == 8080
    assert lookups.calls == 3
