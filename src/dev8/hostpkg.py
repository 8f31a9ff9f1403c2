"""Installing host packages with apt, for the tools dev8 needs (docker.io, debootstrap)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from dev8.core.errors import Dev8Error

Report = Callable[[str], None]


def is_debian_like(os_release: str) -> bool:
    fields = dict(line.split("=", 1) for line in os_release.splitlines() if "=" in line)
    ids = {fields.get("ID", "").strip('"')} | set(fields.get("ID_LIKE", "").strip('"').split())
    return bool(ids & {"debian", "ubuntu"})


def why_cannot_install() -> str | None:
    """None if this process may install host packages, else the reason it may not."""
    if os.geteuid() != 0:
        return "not running as root"
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        return "cannot read /etc/os-release"
    if not is_debian_like(release) or not shutil.which("apt-get"):
        return "not a Debian or Ubuntu system"
    return None


def apt_install(packages: list[str], report: Report, error: type[Dev8Error] = Dev8Error) -> None:
    """``apt-get update``, then install ``packages``; a failure raises ``error`` with apt's
    last line."""
    reason = why_cannot_install()
    if reason:
        raise error(
            f"{' and '.join(packages)} must be installed, and dev8 cannot install it ({reason})"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    report("updating the package index (apt-get update)")
    _run(["apt-get", "update", "-q"], env, error)
    report(f"installing {' '.join(packages)}")
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env, error)


def _run(argv: list[str], env: dict[str, str], error: type[Dev8Error]) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise error(f"`{' '.join(argv[:3])}` failed: {tail[0]}")
