"""Who is connected: SSH sessions and IDE connections, read from /proc/net/tcp."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

_ESTABLISHED = "01"
_LOOPBACK = ("0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F")


def established_remote_connections(
    port: int, tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")
) -> int:
    """Established connections to local ``port`` from anywhere but loopback (our own probes)."""
    count = 0
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state != _ESTABLISHED or int(local.rsplit(":", 1)[1], 16) != port:
                continue
            if remote.rsplit(":", 1)[0] not in _LOOPBACK:
                count += 1
    return count


@dataclass
class Activity:
    """Last-seen times (epoch seconds) pushed forward whenever a connection is seen."""

    ssh_port: int
    ide_port: int
    heartbeat_file: Path
    ssh_sessions: int = 0
    ide_connections: int = 0
    last_ssh_at: float | None = None
    last_ide_at: float | None = None

    def sample(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.ssh_sessions = established_remote_connections(self.ssh_port)
        self.ide_connections = established_remote_connections(self.ide_port)
        if self.ssh_sessions:
            self.last_ssh_at = now
        if self.ide_connections:
            self.last_ide_at = now

    def heartbeat_at(self) -> float | None:
        try:
            return self.heartbeat_file.stat().st_mtime
        except OSError:
            return None

    def snapshot(self) -> dict[str, object]:
        heartbeat = self.heartbeat_at()
        seen = [t for t in (self.last_ssh_at, self.last_ide_at, heartbeat) if t is not None]
        return {
            "ssh_sessions": self.ssh_sessions,
            "ide_connections": self.ide_connections,
            "last_ssh_at": self.last_ssh_at,
            "last_ide_at": self.last_ide_at,
            "code_server_heartbeat_at": heartbeat,
            "last_activity_at": max(seen) if seen else None,
        }
