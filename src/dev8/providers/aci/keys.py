"""What the ACI backend derives from its one key (``DEV8_ACI_KEY``): each workspace's restic
password and the key that seals the records of its workspaces. Pure.

The restic password is derived (HKDF-SHA256 over the key, the workspace id as context), not
drawn at random and stored: nothing holds it at rest, it is the same at every start, and a
lost record (the server's data directory) loses no data, since ``create`` derives the same
password again. The price: whoever has the key has every workspace's password, so it is
kept as the server's secret key is, and it is never rotated without re-keying the
repositories (docs/azure.md)."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT = b"dev8 aci"


def _derive(key: str, context: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=context.encode())
    return hkdf.derive(key.encode())


def sync_password(key: str, workspace_id: str) -> str:
    """The workspace's restic password (43 characters, 256 bits)."""
    return base64.urlsafe_b64encode(_derive(key, f"sync-password:{workspace_id}")).decode()[:43]


def record_key(key: str) -> bytes:
    """A Fernet key for the records."""
    return base64.urlsafe_b64encode(_derive(key, "records"))
