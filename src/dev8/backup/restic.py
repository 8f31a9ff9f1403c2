"""The snapshot repository: where it is, its password, and the restic commands helpers run.

restic (Debian's package, in the base image) does the deduplication, encryption, checksums
and retention. It runs in helper containers that mount the workspace's volumes read-only at
the paths the workspace sees, so a snapshot lists ``/home/dev8/...`` and an unchanged file
is recognised by its metadata without being read again. restic never writes into a
workspace's volume: a restore fetches the snapshot into a scratch directory of dev8's own
(``fetch_args``), with the repository read-only, and another helper, without the repository,
its secrets or a network, copies it into the stopped workspace's volume.

The repository password never goes into a volume, an environment variable of a container,
or an argument list: dev8 keeps it in its data directory (mode 0600) unless
``DEV8_SNAPSHOT_PASSWORD`` or ``RESTIC_PASSWORD`` gives it, and hands it to restic on stdin,
together with the cloud credentials.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dev8.backup.scripts import FETCHED
from dev8.core.errors import InvalidInput
from dev8.core.naming import RESTORE_DIR, VOLUME_MOUNTS

REPOSITORY_ENV = "DEV8_SNAPSHOT_REPOSITORY"
PASSWORD_ENVS = ("DEV8_SNAPSHOT_PASSWORD", "RESTIC_PASSWORD")
CONFIG_FILE = "snapshots.json"
PASSWORD_FILE = "snapshot-password"
REPO_MOUNT, CACHE_MOUNT = "/repo", "/cache"
# Credentials and proxies restic's cloud backends read, passed through from dev8's
# environment. AZURE_ACCOUNT_NAME=devstoreaccount1 makes restic use the Azure storage
# emulator's address (127.0.0.1:10000), which is how the tests reach Azurite.
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AZURE_ACCOUNT_NAME",
    "AZURE_ACCOUNT_KEY",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
)
_REMOTE = re.compile(r"^(s3|azure|b2|gs|swift|rest|sftp|rclone):")
SUPPORTED_REMOTES = ("s3", "azure")
# Reads KEY=VALUE lines up to an empty one from stdin, then leaves the rest (the password)
# to restic, which reads it from stdin when that is not a terminal.
PROLOGUE = 'while IFS= read -r line && [ -n "$line" ]; do export "$line"; done\n'


@dataclass(frozen=True)
class Repository:
    url: str  # a directory on this machine, or s3:..., azure:...

    @property
    def remote(self) -> bool:
        return bool(_REMOTE.match(self.url))

    @property
    def local_path(self) -> Path:
        return Path(self.url)

    @property
    def argument(self) -> str:
        """What restic is given with -r inside the helper."""
        return self.url if self.remote else REPO_MOUNT

    def validate(self) -> Repository:
        if self.remote:
            scheme = self.url.split(":", 1)[0]
            if scheme not in SUPPORTED_REMOTES:
                raise InvalidInput(
                    f"repository type {scheme}: is not supported; use a directory, s3:... "
                    "or azure:..."
                )
        elif not Path(self.url).is_absolute():
            raise InvalidInput(f"repository directory {self.url!r} must be an absolute path")
        return self


def configured_repository(data_dir: Path, env: Mapping[str, str]) -> Repository:
    """``DEV8_SNAPSHOT_REPOSITORY``, else the one set with `dev8 snapshot repo`, else a
    directory in dev8's data directory."""
    if env.get(REPOSITORY_ENV):
        return Repository(env[REPOSITORY_ENV]).validate()
    try:
        saved = json.loads((data_dir / CONFIG_FILE).read_text()).get("repository")
    except (OSError, ValueError):
        saved = None
    return Repository(saved or str(data_dir / "snapshots")).validate()


def save_repository(data_dir: Path, repository: Repository) -> None:
    path = data_dir / CONFIG_FILE
    path.write_text(json.dumps({"repository": repository.url}) + "\n")
    path.chmod(0o600)


def password(data_dir: Path, env: Mapping[str, str], create: bool) -> str | None:
    """The repository password; with ``create``, a new random one is kept (mode 0600) when
    none exists. None when there is none and ``create`` is False."""
    for name in PASSWORD_ENVS:
        if env.get(name):
            return env[name]
    path = data_dir / PASSWORD_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        if not create:
            return None
    value = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")
    return value


def stdin_secrets(env: Mapping[str, str], repository_password: str) -> bytes:
    lines = [f"{name}={env[name]}" for name in CREDENTIAL_VARIABLES if env.get(name)]
    for line in lines:
        if "\n" in line:
            raise InvalidInput(f"{line.split('=')[0]} contains a line break")
    return ("".join(f"{line}\n" for line in lines) + "\n" + repository_password + "\n").encode()


def host_tag(workspace_id: str) -> str:
    """restic's --host for a workspace: its snapshots and the parent of the next one."""
    return f"dev8-{workspace_id}"


def restic_argv(repository: Repository, args: list[str], live_output: bool = False) -> list[str]:
    """A bash command reading the secrets from stdin, then replaced by restic (``exec``):
    nothing runs after restic in a helper that holds the secrets. ``live_output`` sends
    restic's stdout (JSON progress) to stderr, which dev8 reads line by line while the
    helper runs."""
    cache = ["--cache-dir", CACHE_MOUNT] if repository.remote else ["--no-cache"]
    command = shlex.join(["restic", "-r", repository.argument, *cache, *args])
    redirect = " 1>&2" if live_output else ""
    return ["bash", "-c", f"set -u -o pipefail\n{PROLOGUE}exec {command}{redirect}\n"]


def backup_args(workspace_id: str, name: str, roles: list[str]) -> list[str]:
    excludes = [
        arg for role in roles for arg in ("--exclude", f"{VOLUME_MOUNTS[role]}/{RESTORE_DIR}")
    ]
    return [
        "backup",
        "--json",
        "--host",
        host_tag(workspace_id),
        "--tag",
        "dev8",
        "--tag",
        f"name={name}",
        *excludes,
        *(VOLUME_MOUNTS[role] for role in roles),
    ]


def retention_args(
    keep_last: int | None, keep_daily: int | None, keep_weekly: int | None
) -> list[str]:
    args = []
    for flag, value in (
        ("--keep-last", keep_last),
        ("--keep-daily", keep_daily),
        ("--keep-weekly", keep_weekly),
    ):
        if value is not None:
            if value < 1:
                raise InvalidInput(f"{flag} must be at least 1")
            args += [flag, str(value)]
    return args


def fetch_args(snapshot: str, roles: list[str]) -> list[str]:
    """restic's arguments to restore ``roles`` of ``snapshot`` into the scratch directory
    (``FETCHED/home/dev8``...). ``--no-lock``: the repository is mounted read-only, and
    restoring needs no lock (a concurrent prune may fail it, never corrupt it)."""
    includes = [arg for role in roles for arg in ("--include", VOLUME_MOUNTS[role])]
    return ["--no-lock", "restore", snapshot, "--target", FETCHED, *includes]
