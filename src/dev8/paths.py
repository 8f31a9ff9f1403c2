"""Where dev8 keeps its files on the host. ``DEV8_HOME`` overrides the data directory."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    override = os.environ.get("DEV8_HOME")
    if override:
        path = Path(override)
    else:
        import platformdirs  # only here: every CLI command pays for its import otherwise

        path = Path(platformdirs.user_data_dir("dev8"))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def logs_dir() -> Path:
    path = data_dir() / "logs"
    path.mkdir(exist_ok=True)
    return path


def cache_dir() -> Path:
    path = data_dir() / "cache"
    path.mkdir(exist_ok=True)
    return path
