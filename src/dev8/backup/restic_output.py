"""What restic prints: its JSON (progress, summary, listings) among other lines."""

from __future__ import annotations

import json
from typing import Any

from dev8.backup import unchanged
from dev8.backup.progress import TransferProgress


class SnapshotOutput:
    """What the snapshot helper says on its way: restic's JSON progress and summary, and
    the fingerprint lines of ``backup.unchanged``."""

    def __init__(self, progress: TransferProgress) -> None:
        self.progress = progress
        self.summary: dict = {}
        self.fingerprint = ""
        self.unchanged = False
        self._started = False

    def line(self, line: str) -> None:
        if line.startswith(unchanged.FINGERPRINT_LINE):
            self.fingerprint = line.split()[-1]
        elif line.startswith(unchanged.UNCHANGED_LINE):
            self.unchanged = True
        message = json_line(line)
        if message.get("message_type") == "status":
            if not self._started:
                self._started = True
                self.progress.start("snapshot", message.get("total_bytes") or None)
            self.progress.update(int(message.get("bytes_done", 0)))
        elif message.get("message_type") == "summary":
            self.summary.update(message)

    def finish(self) -> None:
        """End the progress display, if restic started one."""
        if self._started:
            self.progress.finish()


def json_output(stdout: bytes, default: Any) -> Any:
    """The JSON a restic command printed; restic 0.14 also prints "reading repository
    password from stdin" on stdout when stdin is not a terminal."""
    for line in stdout.decode(errors="replace").splitlines():
        if line.startswith(("[", "{")):
            return json.loads(line)
    return default


def json_line(line: str) -> dict:
    if not line.startswith("{"):
        return {}
    try:
        return json.loads(line)
    except ValueError:
        return {}
