"""Records every request: Prometheus counters for all, and an audit entry for each mutating
one (who, from where, what, result), written before the response goes out so that a client
that got an answer can always find its entry. Plain ASGI: cheap on the hot read path.

What a member's IDE sends through the path-mode proxy (``/@OWNER/NAME/...``) is the IDE's own
traffic inside their workspace, not a change to dev8: counted, never audited (as on app
hosts, which this recorder does not see at all)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio

from dev8.core.audit import AuditEntry
from dev8.core.clock import utcnow
from dev8.core.errors import Dev8Error
from dev8.server.context import ServerContext

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDE_PREFIX = "/@"
Scope = dict[str, Any]


class RequestRecorder:
    def __init__(self, app: Any, context: Callable[[], ServerContext]) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        outcome = {"status": 500, "audited": False}
        audit = scope["method"] in MUTATING and not scope["path"].startswith(IDE_PREFIX)

        async def record_then_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                # A sign-in refused by the backoff: counted, not audited (dev8.server.ratelimit).
                if audit and not (scope.get("state") or {}).get("throttled"):
                    outcome["audited"] = True
                    await anyio.to_thread.run_sync(self._audit, scope, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_then_send)
        except Exception:
            if audit and not outcome["audited"]:
                await anyio.to_thread.run_sync(self._audit, scope, 500)
            raise
        finally:
            self._count(scope, outcome["status"], time.perf_counter() - started)

    def _count(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        metrics = self.context().metrics
        metrics.requests.labels(scope["method"], route, str(status)).inc()
        metrics.latency.labels(scope["method"], route).observe(seconds)

    def _audit(self, scope: Scope, status: int) -> None:
        state = scope.get("state") or {}
        user = state.get("user")
        error = state.get("error")
        actor = user.name if user else state.get("claimed_user") or "anonymous"
        query = scope.get("query_string", b"").decode(errors="replace")
        self.context().store.audit.record(
            AuditEntry(
                at=utcnow(),
                actor=actor,
                user_id=user.id if user else None,
                source=(scope.get("client") or ("unknown",))[0],
                method=scope["method"],
                path=scope["path"] + (f"?{query}" if query else ""),
                status=status,
                error=error.code if isinstance(error, Dev8Error) else "",
                message=error.message if isinstance(error, Dev8Error) else "",
            )
        )
