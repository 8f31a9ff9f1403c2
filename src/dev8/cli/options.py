"""Options the workspace commands share, and turning the options of `dev8 up` and
`dev8 create` into a ``CreateRequest``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from dev8.core.errors import InvalidInput
from dev8.core.resources import PRESETS

if TYPE_CHECKING:
    from dev8.core.workspace import CreateRequest

NAME = typer.Argument(..., help="Workspace name: lowercase letters, digits and '-'.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")

IMAGE_OPT = typer.Option(
    None,
    "--image",
    help="Image to run (default: dev8/workspace:latest, or the tag in DEV8_IMAGE_TAG).",
)
SIZE_OPT = typer.Option(
    None,
    "--size",
    help="Resource preset: "
    + ", ".join(f"{k} ({v.describe()})" for k, v in PRESETS.items())
    + ". Default small.",
)
CPUS_OPT = typer.Option(None, "--cpus", help="CPU limit, overriding the preset (e.g. 1.5).")
MEMORY_OPT = typer.Option(None, "--memory", help="Memory limit, overriding the preset (e.g. 6g).")
ENV_OPT = typer.Option([], "--env", "-e", help="KEY=VALUE environment variable (repeatable).")
SECRET_OPT = typer.Option(
    [],
    "--secret",
    "-s",
    help="KEY=VALUE secret such as GITHUB_TOKEN, or "
    "KEY to take it from your environment (repeatable). Never written to the volumes.",
)
IDE_PORT_OPT = typer.Option(
    None,
    "--ide-port",
    min=1,
    max=65535,
    help="Fixed host port for the IDE on 127.0.0.1 (default: a free one, kept for good).",
)
SSH_PORT_OPT = typer.Option(
    None,
    "--ssh-port",
    min=1,
    max=65535,
    help="Fixed host port for SSH on 127.0.0.1 (default: a free one, kept for good).",
)
HOME_QUOTA_OPT = typer.Option(
    None,
    "--home-quota",
    help="Size limit of /home/dev8, e.g. 30g (default 20g). Warned about, not enforced.",
)
WORKSPACE_QUOTA_OPT = typer.Option(
    None,
    "--workspace-quota",
    help="Size limit of /workspace, e.g. 200g (default 100g). Warned about, not enforced.",
)
IDLE_OPT = typer.Option(
    None,
    "--idle-timeout",
    help="Server mode: stop the workspace after this long without SSH or IDE activity "
    "(e.g. 30m, 2h, off; default: the server's, 30m).",
)
DOTFILES_OPT = typer.Option(
    None,
    "--dotfiles",
    help="Dotfiles repository (https://HOST/PATH, git@HOST:PATH, or file:///workspace/PATH "
    "for one inside the workspace), cloned into ~/.dotfiles at the first start and its "
    'install script run once; default: your account\'s (server mode); "" for none.',
)


@dataclass(frozen=True)
class CreateOptions:
    """What `dev8 up` and `dev8 create` were given, as typed on the command line."""

    name: str
    image: str | None = None
    size: str | None = None
    cpus: str | None = None
    memory: str | None = None
    env: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()
    ide_port: int | None = None
    ssh_port: int | None = None
    home_quota: str | None = None
    workspace_quota: str | None = None
    idle_timeout: str | None = None
    dotfiles: str | None = None

    def request(self) -> CreateRequest:
        """The request for the backend; ``InvalidInput`` for anything malformed."""
        from dev8.core.dotfiles import validate_dotfiles_repo
        from dev8.core.quotas import parse_quota
        from dev8.core.resources import resolve_resources
        from dev8.core.workspace import CreateRequest

        fixed = {role: port for role, port in (("ide", self.ide_port), ("ssh", self.ssh_port))}
        quotas = {"home": self.home_quota, "workspace": self.workspace_quota}
        return CreateRequest(
            name=self.name,
            image=self.image or "",  # the backend's default
            resources=resolve_resources(self.size, self.cpus, self.memory),
            env={**git_identity(), **parse_pairs(self.env, "--env")},
            secrets=parse_pairs(self.secret, "--secret"),
            host_ports={role: port for role, port in fixed.items() if port},
            quotas={role: parse_quota(value) for role, value in quotas.items() if value},
            idle_timeout_s=idle_seconds(self.idle_timeout),
            dotfiles_repo=None if self.dotfiles is None else validate_dotfiles_repo(self.dotfiles),
        )


def parse_pairs(values: tuple[str, ...] | list[str], option: str) -> dict[str, str]:
    """KEY=VALUE options as a dict; ``--secret KEY`` takes the value from the environment."""
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            if option == "--secret" and key in os.environ:
                pairs[key] = os.environ[key]
                continue
            raise InvalidInput(f"{option} {value!r} is not KEY=VALUE")
        pairs[key] = val
    return pairs


def git_identity() -> dict[str, str]:
    """The host user's git identity, so commits in the workspace carry the same name."""
    import subprocess

    identity = {}
    for key, variable in (("user.name", "GIT_AUTHOR_NAME"), ("user.email", "GIT_AUTHOR_EMAIL")):
        try:
            value = subprocess.run(
                ["git", "config", "--global", key], capture_output=True, text=True, timeout=5
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            value = ""
        if value:
            identity[variable] = value
    return identity


def idle_seconds(text: str | None) -> int | None:
    """'30m', '2h', '90s', '0' or 'off' (never) as seconds; None when not given."""
    if text is None:
        return None
    from dev8.cli.context import require_server

    require_server("--idle-timeout", "idle auto-stop is done by `dev8 server`")
    value = text.strip().lower()
    if value in ("0", "off", "never"):
        return 0
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (value[:-1], value[-1]) if value[-1:] in units else (value, "s")
    if not number.isdigit():
        raise InvalidInput(f"invalid idle timeout {text!r}; use e.g. 30m, 2h or off")
    return int(number) * units[unit]
