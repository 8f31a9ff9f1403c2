"""Preparing the home and the runtime files before any service starts. Runs as root."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from dev8.agent.config import AgentConfig
from dev8.agent.state import HOME_STATE

log = logging.getLogger("dev8.agent")
HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")


def prepare(config: AgentConfig) -> None:
    """Everything the services need."""
    _make_runtime_dirs(config)
    for path in config.volumes.values():
        fix_ownership(path, config.uid, config.gid)
    copy_missing_skeleton(config.skeleton, config.home, config.uid, config.gid)
    ensure_host_keys(config.state_dir / "ssh")
    write_authorized_keys(config)
    write_git_identity(config)
    write_secrets(config)


def _make_runtime_dirs(config: AgentConfig) -> None:
    for path, mode in (
        (config.run_dir, 0o755),
        (config.run_dir / "ssh", 0o755),
        (config.run_dir / "secrets", 0o711),
        (Path("/run/sshd"), 0o755),
    ):
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, 0, 0)
        path.chmod(mode)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    config.state_dir.chmod(0o755)


def fix_ownership(root: Path, uid: int, gid: int) -> bool:
    """Give a volume that arrived owned by someone else (e.g. root) to the user.

    Only acts when the volume's top directory is not the user's, so a user's deliberate
    root-owned file deeper down is left alone on every later start.
    """
    try:
        if root.stat().st_uid == uid:
            return False
    except FileNotFoundError:
        root.mkdir(parents=True)
    log.info("%s is not owned by UID %d; fixing ownership", root, uid)
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == str(root) and HOME_STATE in dirnames:
            dirnames.remove(HOME_STATE)  # the system state kept in the home stays root's
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)
    return True


def copy_missing_skeleton(skeleton: Path, home: Path, uid: int, gid: int) -> list[Path]:
    """Copy each skeleton entry missing from ``home``; never touch what exists.

    A directory missing from the home is created empty and then filled as the walk descends.
    """
    copied: list[Path] = []
    if not skeleton.is_dir():
        return copied
    for dirpath, dirnames, filenames in os.walk(skeleton):
        rel = Path(dirpath).relative_to(skeleton)
        for name in dirnames + filenames:
            source, target = Path(dirpath) / name, home / rel / name
            if os.path.lexists(target):
                continue
            if source.is_symlink():
                target.symlink_to(os.readlink(source))
            elif source.is_dir():
                target.mkdir()
                shutil.copystat(source, target)
            else:
                shutil.copy2(source, target)
            os.lchown(target, uid, gid)
            copied.append(target)
    return copied


def ensure_host_keys(directory: Path) -> list[Path]:
    """The workspace's SSH host keys, generated once and kept on persistent storage."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    keys = []
    for kind in HOST_KEY_TYPES:
        key = directory / f"ssh_host_{kind}_key"
        if not key.exists():
            extra = ["-b", "3072"] if kind == "rsa" else []
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-N",
                    "",
                    "-t",
                    kind,
                    *extra,
                    "-f",
                    str(key),
                    "-C",
                    "dev8-workspace",
                ],
                check=True,
                stdin=subprocess.DEVNULL,
            )
        key.chmod(0o600)
        keys.append(key)
    return keys


def host_public_keys(directory: Path) -> list[str]:
    keys = []
    for kind in HOST_KEY_TYPES:
        path = directory / f"ssh_host_{kind}_key.pub"
        if path.exists():
            keys.append(" ".join(path.read_text().split()[:2]))
    return keys


def _write(path: Path, text: str, mode: int, uid: int = 0, gid: int = 0) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chown(temporary, uid, gid)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def write_authorized_keys(config: AgentConfig, keys: tuple[str, ...] | None = None) -> None:
    """sshd's keys for user dev8: ``keys``, else those the container was created with."""
    chosen = config.ssh_public_keys if keys is None else keys
    _write(config.run_dir / "ssh" / "authorized_keys", "".join(f"{k}\n" for k in chosen), 0o644)


def write_git_identity(config: AgentConfig) -> None:
    lines = ["[user]\n"]
    if config.git_name:
        lines.append(f"\tname = {_git_quote(config.git_name)}\n")
    if config.git_email:
        lines.append(f"\temail = {_git_quote(config.git_email)}\n")
    _write(config.run_dir / "gitconfig", "".join(lines) if len(lines) > 1 else "", 0o644)


def _git_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{escaped}"'


def write_secrets(config: AgentConfig) -> None:
    """The GitHub token, readable by the user only, in /run (never on a volume)."""
    path = config.run_dir / "secrets" / "github-token"
    if config.github_token:
        _write(path, config.github_token, 0o400, config.uid, config.gid)
    else:
        path.unlink(missing_ok=True)
