"""The environment a workspace's container gets: which names dev8 sets itself, which secrets
are internal (never shown, never copied into a restored workspace), and what a valid name is.
One definition, used by the service, the API's schemas and the CLI."""

from __future__ import annotations

import re

from dev8.core.dotfiles import DOTFILES_REPO
from dev8.core.errors import InvalidInput

AGENT_TOKEN = "DEV8_AGENT_TOKEN"
IDE_PASSWORD = "CODE_SERVER_PASSWORD"
# Secrets dev8 makes for every workspace; a user's own secrets are everything else.
INTERNAL_SECRETS = frozenset({AGENT_TOKEN, IDE_PASSWORD})
# "1" in a relayed (server mode) workspace: code-server, sshd and user ports are reached
# only through the agent, so they listen on the container's loopback, the IDE with no
# password of its own (the server signed the user in).
LOOPBACK_ONLY = "DEV8_LOOPBACK_ONLY"
# Set by dev8 on every container: a user's env or secrets may not override them.
RESERVED_ENV = INTERNAL_SECRETS | {"ENVIRONMENT_ID", "SSH_PUBLIC_KEY", LOOPBACK_ONLY, DOTFILES_REPO}
MAX_ENV_NAME = 128
ENV_NAME_PATTERN = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_ENV_NAME - 1}}}")


def check_env_name(key: str) -> str:
    """``key`` if it may be set in a workspace's environment, else ``InvalidInput``."""
    if not ENV_NAME_PATTERN.fullmatch(key):
        raise InvalidInput(
            f"invalid environment variable name {key[:40]!r}: use letters, digits and '_', "
            f"not starting with a digit, at most {MAX_ENV_NAME} characters"
        )
    if key in RESERVED_ENV:
        raise InvalidInput(f"{key} is set by dev8 and cannot be overridden")
    return key


def user_secret_names(secrets: dict[str, str]) -> list[str]:
    """The names of the secrets a user set (dev8's internal ones left out), sorted."""
    return sorted(name for name in secrets if name not in INTERNAL_SECRETS)
