"""What the `dev8` process and the warm process say to each other on the socket: frames of
a 4-byte length and a JSON object; the request carries stdin, stdout and stderr as
``SCM_RIGHTS``. Standard library only: the `dev8` process imports this before anything
else."""

from __future__ import annotations

import array
import hashlib
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

MAX_FRAME = 1 << 20  # an environment is a few KiB; anything near this is not a request
HEADER = struct.Struct(">I")
FDS = 3  # stdin, stdout, stderr


class WireError(Exception):
    """The other end broke the protocol or went away."""


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    body = json.dumps(message).encode()
    data = HEADER.pack(len(body)) + body
    if fds:
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        sent = sock.sendmsg([data], rights)
        sock.sendall(data[sent:])
    else:
        sock.sendall(data)


def receive(sock: socket.socket, with_fds: bool = False) -> tuple[dict[str, Any], list[int]]:
    """One frame, and the descriptors that came with its first bytes."""
    fds: list[int] = []
    head = b""
    if with_fds:
        space = socket.CMSG_SPACE(FDS * array.array("i").itemsize)
        head, ancillary, _, _ = sock.recvmsg(HEADER.size, space)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % array.array("i").itemsize
                fds += array.array("i", payload[:usable]).tolist()
    head += _exactly(sock, HEADER.size - len(head))
    (size,) = HEADER.unpack(head)
    if size > MAX_FRAME:
        _close_all(fds)
        raise WireError(f"a frame of {size} bytes")
    try:
        message = json.loads(_exactly(sock, size))
    except (ValueError, WireError):
        _close_all(fds)
        raise WireError("not a frame") from None
    if not isinstance(message, dict):
        _close_all(fds)
        raise WireError("not an object")
    return message, fds


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise WireError("the other end closed the connection")
        data += chunk
    return data


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def socket_path() -> Path | None:
    """Where this user's warm process for this copy of dev8's code listens; None when no
    private directory can be had (then everything runs in its own process)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"
    directory = Path(base) / f"dev8-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
    except OSError:
        return None
    # A directory someone else made (or opened up) in a shared /tmp is not ours to trust.
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not directory.is_dir():
        return None
    key = hashlib.sha256(f"{code_digest()}\0{namespaces()}".encode()).hexdigest()[:16]
    path = directory / f"warm-{key}.sock"
    return path if len(str(path)) < 100 else None  # sun_path holds 108 bytes


def namespaces() -> str:
    """The caller's namespaces. A child runs in the warm process's, so a command from
    another network or mount namespace (a container, `ip netns exec`) is served by a warm
    process started from there."""
    found = []
    for kind in ("net", "mnt", "pid", "user", "uts"):
        try:
            found.append(str(os.stat(f"/proc/self/ns/{kind}").st_ino))
        except OSError:
            found.append("-")
    return ",".join(found)


def code_digest(package: Path = Path(__file__).resolve().parents[2]) -> str:
    """A digest of the interpreter, dev8's code and its dependencies as they are on disk
    now: a change to any (an upgrade, an edit, a package installed) names a new socket, so
    no command runs on code that was imported before it changed."""
    newest = 0
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
    # Installing, upgrading or removing a distribution adds or renames its entries there.
    installed = [
        os.stat(entry).st_mtime_ns
        for entry in sys.path
        if entry.endswith("-packages") and os.path.isdir(entry)
    ]
    key = f"{os.path.realpath(sys.executable)}\0{package}\0{newest}\0{installed}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def answering(path: Path) -> bool:
    """Whether a warm process accepts connections on ``path`` now."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


def wait_until_answering(timeout: float = 60.0) -> None:
    """For benchmarks and tests: until this user's warm process for this code answers (a
    command that found none started it); ``TimeoutError`` if it does not."""
    path = socket_path()
    deadline = time.monotonic() + timeout
    while path is None or not answering(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no warm process answered at {path} within {timeout:.0f} s")
        time.sleep(0.05)
