"""restic as the agent's sync runs it (``dev8.agent.sync``): a child process with the
password in its own environment only, bounded in time and interruptible, and the parts of
its JSON output the sync reads."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dev8.agent.supervisor import signal_group

CACHE_DIR = Path("/var/cache/dev8-sync")
# Best effort at its lowest, not idle: a busy build must not starve a sync for good.
LOW_PRIORITY = ["nice", "-n", "19", "ionice", "-c", "2", "-n", "7"]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    stdout: str = ""
    error: str = ""  # restic's last line of complaint when not ok


class Runner(Protocol):
    def __call__(
        self, repository: Path, args: list[str], *, limit: float, low_priority: bool
    ) -> Outcome: ...

    def interrupt(self) -> None: ...


class Restic:
    """restic as a child process, the password in its environment only."""

    def __init__(self, password: str, cache_dir: Path = CACHE_DIR) -> None:
        self._env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "RESTIC_PASSWORD": password,
            "RESTIC_CACHE_DIR": str(cache_dir),
        }
        self._process: subprocess.Popen[str] | None = None

    def __call__(
        self, repository: Path, args: list[str], *, limit: float, low_priority: bool
    ) -> Outcome:
        if not self._env["RESTIC_PASSWORD"]:
            return Outcome(False, error="DEV8_SYNC_PASSWORD is not set")
        argv = [*(LOW_PRIORITY if low_priority else []), "restic", "-r", str(repository), *args]
        process = subprocess.Popen(
            argv,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # an interrupt reaches restic under nice and ionice
        )
        self._process = process
        try:
            stdout, stderr = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            signal_group(process.pid, signal.SIGKILL)
            process.communicate()
            return Outcome(False, error=f"restic {args[0]} took more than {limit:g} s")
        finally:
            self._process = None
        if process.returncode != 0:
            return Outcome(False, stdout, _last_line(stderr) or f"exit code {process.returncode}")
        return Outcome(True, stdout)

    def interrupt(self) -> None:
        """Ask a running restic to stop (it removes its lock on SIGINT)."""
        process = self._process
        if process is not None:
            signal_group(process.pid, signal.SIGINT)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def latest_snapshot(snapshots_json: str) -> str | None:
    """The newest snapshot id in ``restic snapshots --json`` output, None when there is none."""
    try:
        snapshots = json.loads(snapshots_json or "[]")
    except ValueError:
        return None
    if not isinstance(snapshots, list) or not snapshots:
        return None
    newest = max(snapshots, key=lambda snapshot: str(snapshot.get("time", "")))
    return str(newest.get("id", "")) or None


def backup_summary(stdout: str) -> dict:
    """The summary line of ``restic backup --json``."""
    for line in reversed(stdout.splitlines()):
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("message_type") == "summary":
            return message
    return {}
