"""Agent settings, read once from the container environment.

The environment is partly the member's to choose (their workspace's variables), so a bad
value never stops the agent: it costs one warning line and the default is used.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dev8.core.environment import LOOPBACK_ONLY
from dev8.core.quotas import DEFAULT_QUOTAS, quotas_from_environment

log = logging.getLogger("dev8.agent")
# Secrets the agent consumes and keeps out of the environment of everything it starts.
SECRET_VARIABLES = (
    "DEV8_AGENT_TOKEN",
    "CODE_SERVER_PASSWORD",
    "GITHUB_TOKEN",
    "SSH_PUBLIC_KEY",
    "DEV8_SYNC_PASSWORD",
)
_KEY_LINE = re.compile(r"^(ssh-|ecdsa-|sk-)[A-Za-z0-9@._-]+ [A-Za-z0-9+/=]+( .*)?$")


@dataclass(frozen=True)
class AgentConfig:
    environment_id: str = ""
    agent_token: str = ""
    code_server_password: str = ""
    github_token: str = ""
    ssh_public_keys: tuple[str, ...] = ()
    git_name: str = ""
    git_email: str = ""
    user: str = "dev8"
    uid: int = 1000
    gid: int = 1000
    home: Path = Path("/home/dev8")
    workspace: Path = Path("/workspace")
    state_dir: Path = Path("/var/lib/dev8")
    run_dir: Path = Path("/run/dev8")
    skeleton: Path = Path("/opt/dev8/skel")
    agent_port: int = 9000
    ide_port: int = 8080
    ssh_port: int = 2222
    code_server: str = "/opt/code-server/bin/code-server"
    sshd: str = "/usr/sbin/sshd"
    child_env: Mapping[str, str] = field(default_factory=dict)
    quotas: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    disk_interval: float = 60.0  # seconds between measurements of the volumes
    restore_timeout: float = 120.0  # seconds the start waits for the package restore
    # Server mode: the IDE and sshd listen on the container's loopback only (reached through
    # the agent's relay), the IDE without a password of its own.
    loopback_only: bool = False
    # ACI: the home and /workspace are on the container's disk and synced with restic to the
    # shares under this root (``dev8.agent.sync``); None elsewhere.
    sync_root: Path | None = None
    sync_password: str = ""
    sync_interval: float = 300.0  # seconds between syncs
    sync_final_limit: float = 20.0  # seconds the final sync at a stop may take

    @property
    def volumes(self) -> dict[str, Path]:
        return {"home": self.home, "workspace": self.workspace}


def parse_public_keys(text: str) -> tuple[str, ...]:
    """The valid OpenSSH public key lines of ``text``; anything else is dropped."""
    lines = (line.strip() for line in text.replace("\\n", "\n").splitlines())
    return tuple(line for line in lines if _KEY_LINE.match(line))


def from_environment(env: Mapping[str, str]) -> AgentConfig:
    return AgentConfig(
        environment_id=env.get("ENVIRONMENT_ID", ""),
        agent_token=env.get("DEV8_AGENT_TOKEN", ""),
        code_server_password=env.get("CODE_SERVER_PASSWORD", ""),
        github_token=env.get("GITHUB_TOKEN", ""),
        ssh_public_keys=parse_public_keys(env.get("SSH_PUBLIC_KEY", "")),
        git_name=env.get("GIT_AUTHOR_NAME", ""),
        git_email=env.get("GIT_AUTHOR_EMAIL", ""),
        child_env={k: v for k, v in env.items() if k not in SECRET_VARIABLES},
        quotas=quotas_from_environment(env, on_invalid=_warn),
        disk_interval=_seconds(env, "DEV8_DISK_INTERVAL", 60.0, 1.0, 86400.0),
        restore_timeout=_seconds(env, "DEV8_RESTORE_TIMEOUT", 120.0, 0.0, 3600.0),
        loopback_only=_flag(env.get(LOOPBACK_ONLY, "")),
        sync_root=_absolute_path(env, "DEV8_SYNC_ROOT"),
        sync_password=env.get("DEV8_SYNC_PASSWORD", ""),
        sync_interval=_seconds(env, "DEV8_SYNC_INTERVAL_S", 300.0, 10.0, 86400.0),
        sync_final_limit=_seconds(env, "DEV8_SYNC_FINAL_S", 20.0, 0.0, 3600.0),
    )


def _absolute_path(env: Mapping[str, str], name: str) -> Path | None:
    text = env.get(name, "").strip()
    if text and not text.startswith("/"):
        _warn(f"{name}={text[:80]!r} is not an absolute path; ignored")
        return None
    return Path(text) if text else None


def _flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    """``name``'s seconds; the default when it is unset, or not a number from low to high."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # (NaN is not)
        _warn(
            f"{name}={text[:40]!r} is not a number of seconds from {low:g} to {high:g}; "
            f"using the default {default:g}"
        )
        return default
    return value


@functools.cache
def _warn(problem: str) -> None:
    """One line per bad value, though the environment may be read more than once."""
    log.warning("%s", problem)
