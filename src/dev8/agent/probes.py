"""Health probes for the supervised services: cheap, local, with short timeouts."""

from __future__ import annotations

import http.client
import socket


def ssh_banner(port: int, timeout: float = 2.0) -> str | None:
    """None when an SSH server answers on ``port`` with its banner, else the reason."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            banner = sock.recv(64)
            # Identify ourselves so sshd logs one plain "Connection closed by 127.0.0.1"
            # line (which the agent filters) instead of a key-exchange error.
            sock.sendall(b"SSH-2.0-dev8-probe\r\n")
    except OSError as exc:
        return f"no SSH server on port {port}: {exc.strerror or exc}"
    if not banner.startswith(b"SSH-"):
        return f"port {port} answered without an SSH banner"
    return None


def http_ok(port: int, path: str, timeout: float = 2.0) -> str | None:
    """None when ``GET path`` on ``port`` returns 2xx, else the reason."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        status = connection.getresponse().status
    except OSError as exc:
        return f"no answer on port {port}: {exc.strerror or exc}"
    except http.client.HTTPException as exc:
        return f"bad HTTP answer on port {port}: {exc}"
    finally:
        connection.close()
    return None if 200 <= status < 300 else f"GET {path} on port {port} returned {status}"
