"""Where dev8 keeps its files on the host. ``DEV8_HOME`` overrides the data directory."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    override = os.environ.get("DEV8_HOME")
    path = Path(override) if override else Path(platformdirs.user_data_dir("dev8"))
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
