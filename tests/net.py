"""Network odds and ends for tests."""

from __future__ import annotations

import socket


def free_port(address: str = "127.0.0.1") -> int:
    """A port where nothing listens on ``address`` (the kernel's pick, then closed)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])
