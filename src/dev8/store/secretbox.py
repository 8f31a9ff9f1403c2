"""Encrypting workspace secrets at rest with a key only the server holds.

The ``secrets`` column keeps a JSON object. Sealed, it is ``{"$sealed": "<Fernet token>",
"$names": [...]}`` (``$`` cannot start an environment variable name, so no secret can collide
with it): the names stay readable, so that listing workspaces, which shows only names, costs
no decryption. A plain object is read as it is, which is how databases written before a key
was set keep working.
Several keys (comma-separated) allow rotation: the first one seals, all of them open.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from dev8.core.errors import InvalidInput, SecretsUnreadable

SEALED = "$sealed"
NAMES = "$names"


def new_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def is_sealed(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and SEALED in value


def secret_names(stored: dict[str, Any] | None) -> list[str]:
    """The names of the secrets in a stored value, sealed or not, without opening it."""
    if is_sealed(stored):
        return list(stored[NAMES])
    return sorted(stored or {})


class SecretBox:
    # cryptography is imported where it is used: local mode's secrets are not sealed.
    def __init__(self, keys: str) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        try:
            self._fernet = MultiFernet(
                [Fernet(key.strip().encode()) for key in keys.split(",") if key.strip()]
            )
        except (ValueError, TypeError) as exc:  # the cause says what is wrong with it
            raise InvalidInput(
                "the secret key is not a valid key; generate one with `dev8 server keygen`"
            ) from exc

    def seal(self, secrets: dict[str, str]) -> dict[str, Any]:
        token = self._fernet.encrypt(json.dumps(secrets).encode()).decode()
        return {SEALED: token, NAMES: sorted(secrets)}

    def open(self, stored: dict[str, Any] | None) -> dict[str, str]:
        from cryptography.fernet import InvalidToken

        if not is_sealed(stored):
            return dict(stored or {})
        try:
            return json.loads(self._fernet.decrypt(stored[SEALED].encode()))
        except InvalidToken:
            raise SecretsUnreadable(
                "workspace secrets were sealed with another key; set DEV8_SECRET_KEY to the key "
                "they were sealed with (keys may be listed comma-separated)"
            ) from None


def open_without_key(stored: dict[str, Any] | None) -> dict[str, str]:
    if is_sealed(stored):
        raise SecretsUnreadable(
            "workspace secrets are encrypted; only the server that holds the key can read them"
        )
    return dict(stored or {})
