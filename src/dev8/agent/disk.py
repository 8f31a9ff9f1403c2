"""Disk usage of the volumes: file-system totals now, bytes used per tree measured in the
background (walking a big tree takes a while), compared with the quotas after each pass."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from dev8.core.quotas import ENFORCEMENT_NOTE, QuotaUse

log = logging.getLogger("dev8.agent")


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
    def __init__(
        self,
        volumes: dict[str, Path],
        interval: float = 60.0,
        quotas: Mapping[str, int] | None = None,
        on_warnings: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.volumes = volumes
        self.interval = interval
        self.quotas = dict(quotas or {})
        self.on_warnings = on_warnings
        self._measured: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.measure_once(stop)
            stop.wait(self.interval)

    def measure_once(self, stop: threading.Event | None = None) -> None:
        for role, path in self.volumes.items():
            if stop is not None and stop.is_set():
                return
            try:
                used = tree_bytes(path)
            except OSError:
                continue
            with self._lock:
                self._measured[role] = (used, time.time())
        warnings = self.warnings()
        for warning in warnings:
            log.warning("%s", warning)
        if self.on_warnings is not None:
            self.on_warnings(warnings)

    def uses(self) -> list[QuotaUse]:
        with self._lock:
            measured = dict(self._measured)
        return [
            QuotaUse(role, measured[role][0], self.quotas[role])
            for role in self.volumes
            if role in self.quotas and role in measured
        ]

    def warnings(self) -> list[str]:
        return [text for use in self.uses() if (text := use.warning())]

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
            if role in self.quotas:
                entry["quota_bytes"] = self.quotas[role]
                if measured:
                    use = QuotaUse(role, measured[0], self.quotas[role])
                    entry.update(quota_percent=use.percent, quota_level=use.level)
            result[role] = entry
        return result


def motd_text(warnings: list[str]) -> str | None:
    """The login message for quota warnings (None when there is nothing to say)."""
    if not warnings:
        return None
    lines = [f"dev8: {warning}." for warning in warnings]
    return "\n".join([*lines, f"dev8: note: {ENFORCEMENT_NOTE}."]) + "\n"
