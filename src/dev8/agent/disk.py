"""Disk usage of the volumes: file-system totals now, bytes used per tree measured in the
background (walking a big tree takes a while)."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from pathlib import Path


def tree_bytes(root: Path) -> int:
    """Bytes allocated under ``root`` (sparse files count what they use), one file system."""
    total = 0
    device = root.stat().st_dev
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode) and info.st_dev == device:
                        stack.append(entry.path)
        except OSError:
            continue
    return total


class DiskUsage:
    def __init__(self, volumes: dict[str, Path], interval: float = 60.0) -> None:
        self.volumes = volumes
        self.interval = interval
        self._measured: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            for role, path in self.volumes.items():
                if stop.is_set():
                    return
                try:
                    used = tree_bytes(path)
                except OSError:
                    continue
                with self._lock:
                    self._measured[role] = (used, time.time())
            stop.wait(self.interval)

    def snapshot(self) -> dict[str, dict[str, object]]:
        result: dict[str, dict[str, object]] = {}
        for role, path in self.volumes.items():
            entry: dict[str, object] = {"path": str(path)}
            try:
                fs = shutil.disk_usage(path)
                entry.update(fs_total_bytes=fs.total, fs_free_bytes=fs.free)
            except OSError:
                pass
            with self._lock:
                measured = self._measured.get(role)
            if measured:
                entry.update(used_bytes=measured[0], measured_at=measured[1])
            result[role] = entry
        return result
