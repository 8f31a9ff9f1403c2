"""Running the server process: logging, the app, uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from dev8.server.app import create_app
from dev8.server.settings import Settings


def serve(settings: Settings) -> None:
    """Open the database (migrating it), then serve until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="info",
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 5,
    )
