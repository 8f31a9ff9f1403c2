"""The record that a workspace exists on ACI while it has no container group: the group
``start`` deploys, rendered by ``create`` (secure values included), sealed and kept in the
server's data directory, one file per workspace.

Why here and not in Azure: a stopped workspace has no group (stop deletes it), and the
group's secure values must come back at the next start; Azure holds nothing of dev8's but
the shares, whose metadata is small and readable by anyone with the storage account. A lost
record is a workspace with no container, which the service makes again with ``create`` on
the same shares (the restic password is derived, so nothing is lost)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from dev8.core.errors import ProviderError

SUFFIX = ".sealed"


class Records:
    def __init__(self, directory: Path, fernet_key: bytes) -> None:
        self.directory = directory
        self._fernet = Fernet(fernet_key)

    def path(self, workspace_id: str) -> Path:
        return self.directory / f"{workspace_id}{SUFFIX}"

    def write(self, workspace_id: str, record: dict[str, Any]) -> None:
        """Atomically, readable by this user only."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = self._fernet.encrypt(json.dumps(record, sort_keys=True).encode())
        partial = self.path(workspace_id).with_suffix(".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(token)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(self.path(workspace_id))

    def read(self, workspace_id: str) -> dict[str, Any] | None:
        try:
            token = self.path(workspace_id).read_bytes()
        except FileNotFoundError:
            return None
        try:
            record: dict[str, Any] = json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise ProviderError(
                f"the ACI record of workspace {workspace_id} was sealed with another "
                "DEV8_ACI_KEY; set the key it was made with"
            ) from None
        return record

    def delete(self, workspace_id: str) -> None:
        self.path(workspace_id).unlink(missing_ok=True)

    def workspace_ids(self) -> list[str]:
        """Every workspace with a record: a directory listing, no call to Azure."""
        if not self.directory.is_dir():
            return []
        return sorted(path.name[: -len(SUFFIX)] for path in self.directory.glob(f"*{SUFFIX}"))
