"""Make a Docker engine available: detect it, or install and start Debian's ``docker.io``."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from dev8.core.errors import Dev8Error, EngineUnavailable
from dev8.hostpkg import Report, apt_install, why_cannot_install
from dev8.providers.docker.client import engine_answers

DOCKERD_LOG = Path("/var/log/dev8-dockerd.log")
START_TIMEOUT_S = 90.0


def _start_dockerd(report: Report) -> subprocess.Popen[bytes] | None:
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        report("starting docker.service")
        subprocess.run(["systemctl", "start", "docker"], check=False)
        return None
    report(f"starting dockerd in the background (log: {DOCKERD_LOG})")
    with DOCKERD_LOG.open("ab") as log:
        return subprocess.Popen(
            ["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )


def _attach_quota_images(report: Report) -> None:
    """Before the engine restarts the workspaces that were running, put their enforced
    volumes back on loop devices (a reboot forgets them, and the mount would fail)."""
    from dev8.providers.docker.loopquota import LoopVolumes, quota_directory

    try:
        names = LoopVolumes(quota_directory()).attach_directory()
    except Dev8Error as exc:
        report(f"warning: quota volumes not re-attached: {exc.message}")
        return
    if names:
        report(f"re-attached {len(names)} quota volume(s) to loop devices")


def _last_log_line() -> str:
    try:
        lines = DOCKERD_LOG.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log"


def _wait_until_answering(process: subprocess.Popen[bytes] | None, report: Report) -> None:
    report("waiting for the engine to answer")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if engine_answers():
            return
        if process is not None and process.poll() is not None:
            raise EngineUnavailable(
                f"dockerd exited with code {process.returncode}: {_last_log_line()}"
            )
        time.sleep(0.3)
    raise EngineUnavailable(
        f"dockerd did not answer within {START_TIMEOUT_S:.0f} s: {_last_log_line()}"
    )


def ensure_engine(report: Report = lambda _msg: None) -> str:
    """Make sure a Docker engine answers; return a sentence saying what was done.

    Fast and side-effect free when the engine already answers. Otherwise, as root on
    Debian/Ubuntu, installs ``docker.io`` if ``dockerd`` is missing, and starts it.
    """
    if engine_answers():
        return "the Docker engine is running"
    scheme = os.environ.get("DOCKER_HOST", "unix://").split("://")[0]
    if scheme not in ("unix", ""):
        raise EngineUnavailable(
            f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer; "
            "start that engine or unset DOCKER_HOST"
        )
    installed = False
    if not shutil.which("dockerd"):
        reason = why_cannot_install()
        if reason:
            raise EngineUnavailable(
                f"no Docker engine is installed and dev8 cannot install one ({reason}); "
                "install Docker Engine, start it, and run this again"
            )
        apt_install(["docker.io"], report, EngineUnavailable)
        installed = True
        if engine_answers():  # the package's init script may have started it
            return "installed docker.io; the engine is running"
    elif os.geteuid() != 0:
        raise EngineUnavailable("dockerd is installed but not running; start Docker (as root)")
    _attach_quota_images(report)
    _wait_until_answering(_start_dockerd(report), report)
    return ("installed docker.io and started" if installed else "started") + " the Docker engine"
