"""Running the server process: logging, the app, uvicorn."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import uvicorn

from dev8.core.heap import keep_freed_buffers
from dev8.server.app import create_app
from dev8.server.settings import Settings


class _DeniedUpgrades(logging.Filter):
    """uvicorn logs an error for every WebSocket refused with an HTTP answer (401, 404...),
    which the server does on purpose; the refusal itself is in the audit log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing handshake" not in record.getMessage()


def transport_options() -> dict[str, Any]:
    """How uvicorn runs the app: the same for `dev8 server` and the tests' live server."""
    return {
        # uvloop: a relayed WebSocket message or scp chunk costs the server a third less CPU
        # (benchmarks/relay.py); plain asyncio where it is not installed.
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        # h11 bounds a request's head (16 KiB); uvicorn's httptools protocol keeps whatever
        # headers a client sends.
        "http": "h11",
        # What ``auto`` picks today, pinned: benchmarks/tunnel.py measured the server's CPU
        # per relayed GB of this and of the legacy "websockets" alike within noise (1.3-1.7
        # s/GB both ways), and the legacy one is deprecated.
        "ws": "websockets-sansio",
        # The IDE's WebSockets carry large messages; the relay bounds what it buffers.
        "ws_max_size": 64 * 1024 * 1024,
        # Deflating what the relay carries costs CPU per message and saves nothing: an SSH
        # stream is encrypted, and the hop to the workspace is uncompressed anyway.
        "ws_per_message_deflate": False,
    }


def serve(settings: Settings) -> None:
    """Open the database (migrating it), then serve until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(_DeniedUpgrades())
    keep_freed_buffers()  # relayed streams: a buffer per message (see dev8.core.heap)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        # The app believes X-Forwarded-For/-Proto from DEV8_TRUSTED_PROXIES only
        # (dev8.server.proxies); uvicorn's own default would believe 127.0.0.1.
        proxy_headers=False,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        log_level="info",
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
        ws_ping_interval=20.0,
        ws_ping_timeout=30.0,
        **transport_options(),
    )
