"""`dev8 port-forward NAME [LOCAL:]REMOTE ...`: ports inside a workspace on this machine's
loopback, several at once, until Ctrl-C.

Each connection accepted on 127.0.0.1:LOCAL gets its own stream to REMOTE inside the
workspace, opened by the ``AccessBackend``: a tunnel through the server in server mode, the
workspace's agent in local mode (the workspace publishes only its IDE, sshd and agent).
"""

from __future__ import annotations

import errno
import selectors
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import typer

from dev8.cli.backends import PortOpener
from dev8.cli.options import NAME
from dev8.core.errors import Conflict, Dev8Error, InvalidInput

LOOPBACK = "127.0.0.1"
SPEC_HELP = "[LOCAL:]REMOTE, e.g. 8000 or 9000:8000"
BACKLOG = 128


@dataclass(frozen=True)
class Forward:
    local: int
    remote: int

    def __str__(self) -> str:
        return f"{LOOPBACK}:{self.local} → workspace port {self.remote}"


def _port(text: str, spec: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise InvalidInput(
            f"invalid port forward {spec!r}: use {SPEC_HELP}, with ports from 1 to 65535"
        )
    return int(text)


def parse_forward(spec: str) -> Forward:
    """``REMOTE`` (the same port here) or ``LOCAL:REMOTE``. Pure."""
    local, colon, remote = spec.strip().rpartition(":")
    remote_port = _port(remote, spec)
    return Forward(_port(local, spec) if colon else remote_port, remote_port)


def parse_forwards(specs: Sequence[str]) -> list[Forward]:
    """Every spec, each local port at most once. Pure."""
    forwards = [parse_forward(spec) for spec in specs]
    seen: set[int] = set()
    for forward in forwards:
        if forward.local in seen:
            raise InvalidInput(f"local port {forward.local} is given twice; forward it once")
        seen.add(forward.local)
    return forwards


def listen(forward: Forward, name: str) -> socket.socket:
    """A socket listening on 127.0.0.1:LOCAL; ``Conflict`` if the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not past a live listener
    try:
        sock.bind((LOOPBACK, forward.local))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise Conflict(
                f"local port {forward.local} is already in use; choose another, e.g. "
                f"`dev8 port-forward {name} {forward.local + 1}:{forward.remote}`"
            ) from None
        raise InvalidInput(
            f"cannot listen on {LOOPBACK}:{forward.local}: {exc.strerror or exc}"
        ) from None
    return sock


def listen_all(forwards: Sequence[Forward], name: str) -> dict[socket.socket, Forward]:
    """Every listener, or none (those already open are closed when one fails)."""
    listeners: dict[socket.socket, Forward] = {}
    try:
        for forward in forwards:
            listeners[listen(forward, name)] = forward
    except Dev8Error:
        for sock in listeners:
            sock.close()
        raise
    return listeners


def serve(
    listeners: dict[socket.socket, Forward],
    opener: PortOpener,
    stop: threading.Event | None = None,
) -> None:
    """Accept on every listener until interrupted (or ``stop`` is set), relaying each
    connection in threads of its own."""
    with selectors.DefaultSelector() as selector:
        for sock, forward in listeners.items():
            selector.register(sock, selectors.EVENT_READ, forward)
        while stop is None or not stop.is_set():
            for key, _events in selector.select(timeout=None if stop is None else 0.1):
                listener: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    connection, _address = listener.accept()
                except OSError:
                    continue  # the peer gave up before we took it
                args = (connection, key.data, opener)
                threading.Thread(target=_relay, args=args, daemon=True).start()


def _relay(connection: socket.socket, forward: Forward, opener: PortOpener) -> None:
    from dev8.cli.relay import pump

    def warn(message: str) -> None:
        from dev8.cli.access import tell

        tell(f"{forward}: {message}")

    try:
        stream = opener(forward.remote)
    except Dev8Error as exc:
        warn(exc.message)
        connection.close()
        return
    pump(connection, stream, warn)


def port_forward(
    name: str = NAME,
    ports: list[str] = typer.Argument(..., metavar="[LOCAL:]REMOTE...", help=SPEC_HELP),
) -> None:
    """Forward ports of the workspace to this machine's loopback, several at once, until
    Ctrl-C: `dev8 port-forward NAME 8000 9000:3000` makes 127.0.0.1:8000 reach port 8000
    in the workspace and 127.0.0.1:9000 its port 3000. Starts the workspace if it is
    stopped. In server mode each connection goes through the server."""
    from dev8.cli.access import ensure_running
    from dev8.cli.context import access

    forwards = parse_forwards(ports)
    workspace = ensure_running(name)
    opener = access().port_opener(workspace)
    listeners = listen_all(forwards, name)
    for forward in listeners.values():
        print(forward, flush=True)
    try:
        serve(listeners, opener)
    except KeyboardInterrupt:
        pass
    finally:
        for sock in listeners:
            sock.close()
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("port-forward")(port_forward)
