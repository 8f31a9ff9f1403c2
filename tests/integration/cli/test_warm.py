"""The warm process (``dev8.cli.warm``) on the real engine: a workspace stopped, started
and restarted by commands it forked is what the commands' own processes leave, and the
output says so in the same words."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

from dev8.cli.warm.wire import wait_until_answering


def test_lifecycle_commands_forked_by_the_warm_process(dev8, monkeypatch):
    runtime = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    warm = {"DEV8_WARM": "on", "XDG_RUNTIME_DIR": str(runtime)}
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))  # where this process looks for it
    try:
        dev8("up", "warm-a")
        dev8("ls", **warm)  # none runs yet: this one runs here and starts one
        wait_until_answering()
        folder = runtime / next(p.name for p in runtime.iterdir())

        assert "warm-a is stopped" in dev8("stop", "warm-a", **warm).stdout
        assert json.loads(dev8("status", "warm-a", "--json").stdout)["state"] == "stopped"
        started = dev8("start", "warm-a", **warm).stdout
        assert "warm-a is running" in started and "dev8 ssh warm-a" in started
        assert "warm-a restarted" in dev8("restart", "warm-a", **warm).stdout
        assert json.loads(dev8("status", "warm-a", "--json").stdout)["state"] == "running"
        assert dev8("ssh", "warm-a", "--", "echo", "reached").stdout.strip() == "reached"

        missing = dev8("start", "nosuch", check=False, **warm)
        alone = dev8("start", "nosuch", check=False)
        assert (missing.returncode, missing.stderr) == (alone.returncode, alone.stderr) != (0, "")

        log = next(folder.glob("*.log")).read_text()
        assert [line.split(": ")[-1] for line in log.splitlines()] == [
            "['stop']",
            "['start']",
            "['restart']",
            "['start']",
        ]
    finally:
        for lock in runtime.glob("*/*.lock"):
            if pid := lock.read_text().strip():
                os.kill(int(pid), signal.SIGTERM)
        shutil.rmtree(runtime, ignore_errors=True)
