"""The `dev8` process's side: hand the command to the warm process, or say it cannot.
Standard library only, and nothing imported that the cold path would not use."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

from dev8.cli.warm import WARM_COMMANDS
from dev8.cli.warm.wire import WireError, receive, send, socket_path

HANDSHAKE_S = 2.0  # a warm process that does not fork within this is not used
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run_warm(argv: list[str]) -> int | None:
    """The exit code of the command ``argv`` run by the warm process, or None when it was
    not run there (none is running, it is off, or it failed before the command began): the
    caller then runs the command itself."""
    if not argv or argv[0] not in WARM_COMMANDS or os.environ.get("DEV8_WARM") == "off":
        return None
    path = socket_path()
    if path is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(HANDSHAKE_S)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        start_warm_process(path)
        return None
    with sock:
        try:
            pid = _hand_over(sock, argv)
        except (OSError, WireError, KeyError, ValueError, TypeError):
            return None  # the child was told nothing: it runs nothing
        return _wait_for(sock, pid)


def _hand_over(sock: socket.socket, argv: list[str]) -> int:
    """Send the command; the forked child answers with its pid and runs the command only
    once told to go, so that a hand-over that fails halfway never runs it twice."""
    mask = os.umask(0o022)
    os.umask(mask)
    request = {
        "argv": argv,
        # What Click names the program after in usage lines: `dev8`, or `python -m dev8`.
        "program": sys.argv[0],
        "package": getattr(sys.modules["__main__"], "__package__", None) or "",
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": mask,
    }
    send(sock, request, fds=[0, 1, 2])
    hello, _ = receive(sock)
    pid = int(hello["pid"])
    send(sock, {"go": True})
    return pid


def _wait_for(sock: socket.socket, pid: int) -> int:
    """The child's exit code; Ctrl-C and friends reach it meanwhile (the terminal sends
    them to this process, the one it runs in the foreground)."""

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    sock.settimeout(None)
    try:
        message, _ = receive(sock)
        return int(message["exit"])
    except (OSError, WireError, KeyError, ValueError, TypeError):
        sys.stderr.write(
            "error: the warm dev8 process ended before the command did; "
            "DEV8_WARM=off runs each command in its own process\n"
        )
        return 1


def start_warm_process(path: Path) -> None:
    """A warm process for the next command, in the background, in its own session (so
    that the terminal's Ctrl-C never reaches it)."""
    import subprocess

    log = path.with_suffix(".log")
    with contextlib.suppress(OSError), open(log, "ab") as output:
        subprocess.Popen(
            [sys.executable, "-m", "dev8.cli.warm", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
            cwd="/",
        )
