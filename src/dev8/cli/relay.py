"""Relaying stdin/stdout to a TCP port: the ProxyCommand behind `ssh dev8.NAME`."""

from __future__ import annotations

import os
import socket
import threading


def relay_stdio(host: str, port: int) -> None:
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(None)

    def upstream() -> None:
        while data := os.read(0, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := sock.recv(65536):
        os.write(1, data)
    sock.close()
