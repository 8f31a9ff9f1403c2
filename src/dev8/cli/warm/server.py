"""The warm process: import once, then fork a child per command handed over.

One thread, no open connections and no engine or database client before a fork: the
child starts from imported modules only, and opens what its command needs itself."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from dev8.cli.warm import IDLE_S
from dev8.cli.warm.wire import FDS, WireError, receive, send

REQUEST_S = 2.0  # for a `dev8` process to send its command, and to say go
CHECK_S = 5.0  # how often an idle warm process looks at its socket and the clock
# What the everyday commands import, the costly part first (SQLAlchemy, the docker SDK,
# Typer, Rich); a command's child imports whatever else it needs.
PRELOAD = (
    "dev8.store.store",
    "dev8.providers.docker.provider",
    "dev8.service.workspaces",
    "dev8.cli.context",
    "dev8.cli.lifecycle",
    "dev8.cli.inspect",
    "dev8.cli.access",
    "dev8.cli.looking",
    "dev8.cli.ssh",
    "dev8.cli.remote",  # after `dev8 login`: the SDK, with httpx
    "typer",
    "typer._adapters",  # with pydantic, which Typer coerces parameters with
    "rich.live",
    "rich.status",
    "rich.table",
    "sqlite3",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "zoneinfo",
    "getpass",
    "netrc",
)


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    lock = open(path.with_suffix(".lock"), "w")  # noqa: SIM115 - held for the whole life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another one serves this socket
    lock.write(f"{os.getpid()}\n")  # for whoever wants to end it: `kill $(cat ...lock)`
    lock.flush()
    for name in PRELOAD:
        importlib.import_module(name)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by one that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(16)
    ours = path.stat().st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    serve(listener, path, ours, inherited=[listener, lock])
    if _still_bound(path, ours):  # not one a newer warm process bound since
        path.unlink()
    return 0


def serve(listener: socket.socket, path: Path, ours: int, inherited: list[Any]) -> None:
    """Fork a child per command until idle for ``IDLE_S`` or the socket file (inode
    ``ours``) is gone; a child closes ``inherited`` first (it must not keep the lock past
    this process)."""
    last = time.monotonic()
    listener.settimeout(CHECK_S)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if time.monotonic() - last > IDLE_S or not _still_bound(path, ours):
                return
            continue
        last = time.monotonic()
        with conn:
            _fork_for(conn, inherited)


def _still_bound(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def _fork_for(conn: socket.socket, inherited: list[Any]) -> None:
    if peer_uid(conn) != os.getuid():
        return
    conn.settimeout(REQUEST_S)
    try:
        request, fds = receive(conn, with_fds=True)
    except (OSError, WireError):
        return
    try:
        if len(fds) != FDS or not valid_request(request):
            return
        pid = os.fork()
        if pid == 0:
            code = 70  # EX_SOFTWARE, if the child fails before its command ends
            try:
                for held in inherited:
                    held.close()
                code = run_child(conn, fds, request)
            finally:
                os._exit(code)
        # The command's name only: its arguments may hold secrets (`up --env KEY=...`).
        print(f"{time.strftime('%F %T')} pid {pid}: {request['argv'][:1]}", flush=True)
    finally:
        for fd in fds:
            os.close(fd)


def peer_uid(conn: socket.socket) -> int:
    credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", credentials)
    return int(uid)


def valid_request(request: dict[str, Any]) -> bool:
    argv, env = request.get("argv"), request.get("env")
    return (
        isinstance(argv, list)
        and all(isinstance(word, str) for word in argv)
        and isinstance(env, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        and isinstance(request.get("cwd"), str)
        and isinstance(request.get("program"), str)
        and isinstance(request.get("package"), str)
        and isinstance(request.get("umask"), int)
    )


def run_child(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> int:
    """Become the `dev8` process that handed the command over: its terminal, environment,
    directory and umask; run the command once told to go, and report its exit code."""
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    sys.argv = [request["program"], *request["argv"]]
    sys.modules["__main__"].__package__ = request["package"]
    _reopen_stdio()
    send(conn, {"pid": os.getpid()})
    if receive(conn)[0].get("go") is not True:
        return 0
    conn.settimeout(None)
    code = run_command()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    send(conn, {"exit": code})
    return code


def _reopen_stdio() -> None:
    """Python's standard streams on the new descriptors: a terminal gets line buffering and
    Rich's consoles detect it (size, colours) as a new process's would."""
    from dev8.cli.output import reset_consoles

    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(  # noqa: SIM115
        2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
    )
    reset_consoles()


def run_command() -> int:
    from dev8.cli.main import run_here

    try:
        run_here()
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
