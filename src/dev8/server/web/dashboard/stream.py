"""One operation's progress as server-sent events, for the detail page: each new progress
line as it is recorded, then the operation's end state, then the stream closes.

Progress events are rows in the store, written by whichever thread or process runs the
operation, so there is no in-process notification to wait on: the stream reads the store
every ``POLL_S`` and sends only the rows after the last one sent. Each stream is bounded: at
most ``MAX_S`` long (the browser's ``EventSource`` reconnects with ``Last-Event-ID`` and
resumes where it was), a comment every ``HEARTBEAT_S`` so that proxies keep an idle stream
open, ended as soon as the client goes, and at most ``PER_USER`` at a time for each user.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from dev8.core.errors import TooManyRequests
from dev8.core.workspace import UNFINISHED, Operation, OperationEvent
from dev8.store.store import Store

POLL_S = 0.5
HEARTBEAT_S = 15.0
MAX_S = 600.0
PER_USER = 4
BATCH = 500  # rows read at a time; more are read at once, without waiting
RETRY_MS = 2000  # how long the browser waits before it reconnects
HEADERS = {
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx: pass each event on as it comes
    "X-Content-Type-Options": "nosniff",
}


# The wire format (pure) --------------------------------------------------------------------
def line_event(event: OperationEvent, at: str) -> str:
    """A progress line (``at``: its time as the page shows it); its ``id`` is the event's
    seq, which a reconnecting browser sends back as ``Last-Event-ID``. The data is one line
    of JSON (any newline in the message escaped)."""
    data = json.dumps({"seq": event.seq, "at": at, "message": event.message})
    return f"id: {event.seq}\nevent: line\ndata: {data}\n\n"


def end_event(operation: Operation) -> str:
    data = json.dumps({"result": operation.result, "message": operation.message})
    return f"event: end\ndata: {data}\n\n"


HEARTBEAT = ": keep-alive\n\n"


def resume_after(last_event_id: str | None, after: int) -> int:
    """Where a stream starts: after the ``Last-Event-ID`` a reconnecting browser sends, else
    after ``after`` (what the page already shows)."""
    text = (last_event_id or "").strip()
    return int(text) if text.isdigit() and len(text) <= 18 else after


# How many each user has open ---------------------------------------------------------------
@dataclass
class StreamSlots:
    """Counts the open streams of each user (in this process) against ``limit``."""

    limit: int = PER_USER
    _open: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, user: str) -> None:
        with self._lock:
            if self._open.get(user, 0) >= self.limit:
                raise TooManyRequests(
                    f"{self.limit} progress streams are open already; close a tab and reload"
                )
            self._open[user] = self._open.get(user, 0) + 1

    def give_back(self, user: str) -> None:
        with self._lock:
            left = self._open.get(user, 0) - 1
            if left > 0:
                self._open[user] = left
            else:
                self._open.pop(user, None)

    def open_for(self, user: str) -> int:
        with self._lock:
            return self._open.get(user, 0)


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response that calls ``on_close`` once it is over however it
    ends (finished, client gone, cancelled), even if it never began to send."""

    def __init__(self, events: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        super().__init__(events, media_type="text/event-stream", headers=HEADERS)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


# The stream ----------------------------------------------------------------------------------
async def progress_events(
    request: Request, store: Store, operation_id: str, after: int, show: Callable[[datetime], str]
) -> AsyncIterator[str]:
    """``operation_id``'s progress lines after the seq ``after`` (their times as ``show``
    writes them), then its end state."""
    started = last_sent = time.monotonic()
    yield f"retry: {RETRY_MS}\n\n"
    while time.monotonic() - started < MAX_S:
        if await request.is_disconnected():
            return
        # The state is read before the lines: once it says finished, every line is written.
        operation = await run_in_threadpool(store.get_operation, operation_id)
        events = await run_in_threadpool(store.events, operation_id, after, BATCH)
        for event in events:
            yield line_event(event, show(event.at))
            after = event.seq
        if len(events) == BATCH:
            continue
        if operation.result not in UNFINISHED:
            yield end_event(operation)
            return
        if events:
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= HEARTBEAT_S:
            yield HEARTBEAT
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_S)
