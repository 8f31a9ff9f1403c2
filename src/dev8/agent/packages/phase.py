"""The package restore phase of the agent's start: run it, wait a bounded time, report."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

from dev8.agent.motd import Motd
from dev8.agent.packages.layout import Layout, Recorded, read_json
from dev8.agent.packages.restore import needs_restore

log = logging.getLogger("dev8.agent")


class PackageRestore:
    def __init__(self, layout: Layout, motd: Motd) -> None:
        self.layout = layout
        self.motd = motd
        self.running = False
        self.done = threading.Event()
        self.blocking = True  # until it finishes or its time limit passes

    def start(self) -> None:
        """Start a restore if one is needed; returns at once."""
        try:
            needed = needs_restore(self.layout)
        except OSError as exc:
            log.warning("cannot read the package records: %s", exc)
            needed = False
        if not needed:
            self.done.set()
            self._write_motd()
            return
        log.info("restoring recorded system packages")
        self.running = True
        process = subprocess.Popen(
            [sys.executable, "-m", "dev8.agent.packages", "restore"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        threading.Thread(target=self._wait, args=(process,), daemon=True).start()

    def _wait(self, process: subprocess.Popen[bytes]) -> None:
        _, stderr = process.communicate()
        if stderr.strip():
            log.warning("package restore: %s", stderr.decode(errors="replace").strip()[-500:])
        report = read_json(self.layout.report)
        log.info(
            "package restore %s: offline %d, network %d, missing %s",
            report.get("status", "failed"),
            len(report.get("offline", [])),
            len(report.get("network", [])),
            report.get("missing", []),
        )
        self.running = False
        self._write_motd()
        self.done.set()

    def release(self) -> None:
        """Stop blocking the start; a restore still running goes on in the background."""
        if not self.done.is_set():
            log.warning(
                "package restore still running at its time limit; starting the "
                "services anyway (it continues in the background)"
            )
        self.blocking = False

    def progress(self) -> str | None:
        """Why the workspace is not ready yet, while the restore blocks start-up."""
        if self.done.is_set() or not self.blocking:
            return None
        return f"restoring packages: {read_json(self.layout.report).get('progress', 'starting')}"

    def snapshot(self) -> dict:
        recorded = Recorded.load(self.layout.state)
        return {
            "recorded": len(recorded.packages),
            "running": self.running,
            "restore": read_json(self.layout.report),
        }

    def _write_motd(self) -> None:
        report = read_json(self.layout.report)
        if report and report.get("status") not in ("complete", "running"):
            missing = report.get("missing", [])
            text = (
                f"dev8: {len(missing)} recorded system package(s) could not be restored "
                f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}); they stay "
                "recorded and are retried at the next start. See `dev8 packages`.\n"
            )
            self.motd.set("packages", text)
        else:
            self.motd.set("packages", None)
