"""The agent's HTTP endpoints on port 9000.

``GET /health`` is open: 200 when sshd and code-server are healthy, 503 with the reason.
``GET /status`` and ``GET /credentials`` need ``Authorization: Bearer <DEV8_AGENT_TOKEN>``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        port: int,
        token: str,
        health: Callable[[], str | None],
        status: Callable[[], dict],
        credentials: Callable[[], dict],
    ) -> None:
        super().__init__(("0.0.0.0", port), _Handler)
        self.token = token
        self.health = health
        self.status = status
        self.credentials = credentials


class _Handler(BaseHTTPRequestHandler):
    server: AgentHTTPServer
    server_version = "dev8-agent"
    sys_version = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/health":
            reason = self.server.health()
            if reason is None:
                self._send(200, {"status": "healthy"})
            else:
                self._send(503, {"status": "unhealthy", "reason": reason})
        elif path in ("/status", "/credentials"):
            if self._authorized():
                source = self.server.status if path == "/status" else self.server.credentials
                self._send(200, source())
        else:
            self._send(404, {"error": "not_found", "message": f"no endpoint {path}"})

    def _authorized(self) -> bool:
        expected = self.server.token
        given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not expected:
            self._send(403, {"error": "forbidden", "message": "the agent has no token configured"})
            return False
        if not hmac.compare_digest(given.encode(), expected.encode()):
            self._send(401, {"error": "unauthorized", "message": "missing or wrong agent token"})
            return False
        return True

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: health polls would drown everything else."""
