"""Workspace names, ids and the names of the engine objects derived from them.

Engine objects are named from the immutable id, never the human name, so a rename can never
orphan or wipe data.
"""

from __future__ import annotations

import re
import secrets

from dev8.core.errors import InvalidInput

NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_NAME_LENGTH = 63
LABEL_PREFIX = "dev.dev8"
LABEL_WORKSPACE_ID = f"{LABEL_PREFIX}.workspace-id"
LABEL_OWNER = f"{LABEL_PREFIX}.owner"
LABEL_ROLE = f"{LABEL_PREFIX}.role"
LABEL_NAME = f"{LABEL_PREFIX}.name"
VOLUME_ROLES = ("home", "workspace", "system")
VOLUME_MOUNTS = {
    "home": "/home/dev8",
    "workspace": "/workspace",
    "system": "/var/lib/dev8",
}
HELPER_ROLE = "helper"  # short-lived containers that work on volumes (backup, restore, du...)
# Inside a volume: where a restore stages the new tree and keeps the old one until the swap is
# complete. Never backed up, never restored.
RESTORE_DIR = ".dev8-restore"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid workspace name, else raise ``InvalidInput``."""
    if not name:
        raise InvalidInput("workspace name is empty; use lowercase letters, digits and '-'")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"workspace name {name[:20]!r}... is {len(name)} characters; the limit is "
            f"{MAX_NAME_LENGTH}"
        )
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"invalid workspace name {name!r}: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


def new_workspace_id() -> str:
    """A short random id: 12 lowercase hex characters (48 bits)."""
    return secrets.token_hex(6)


def volume_name(workspace_id: str, role: str) -> str:
    if role not in VOLUME_ROLES:
        raise InvalidInput(
            f"unknown volume role {role!r}; expected one of {', '.join(VOLUME_ROLES)}"
        )
    return f"dev8-{workspace_id}-{role}"


def container_name(workspace_id: str) -> str:
    return f"dev8-{workspace_id}"


def helper_name(workspace_id: str, purpose: str) -> str:
    return f"dev8-{workspace_id}-{purpose}-{secrets.token_hex(3)}"


def labels(workspace_id: str, owner: str, role: str, name: str | None = None) -> dict[str, str]:
    result = {LABEL_WORKSPACE_ID: workspace_id, LABEL_OWNER: owner, LABEL_ROLE: role}
    if name is not None:
        result[LABEL_NAME] = name
    return result
