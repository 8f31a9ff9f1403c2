"""The SDK's entry point: a ``Client`` owning the collections of models, over the low-level
``APIClient`` (as docker-py's ``DockerClient`` over its ``APIClient``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import httpx

from dev8.client.api import APIClient
from dev8.client.models import (
    OperationCollection,
    TokenCollection,
    UserCollection,
    WorkspaceCollection,
)
from dev8.core.errors import InvalidInput

if TYPE_CHECKING:
    from dev8.client.tunnel import Tunnel

URL_ENV, TOKEN_ENV = "DEV8_SERVER_URL", "DEV8_TOKEN"


class Client:
    """A connection to a dev8 server. ``token`` is an API token (``dev8 login`` makes one);
    without it only ``login`` and ``health`` work. ``api`` makes the calls."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api = APIClient(base_url, token=token, timeout=timeout, transport=transport)
        self.workspaces = WorkspaceCollection(self.api)
        self.operations = OperationCollection(self.api)
        self.users = UserCollection(self.api)
        self.tokens = TokenCollection(self.api)

    @classmethod
    def from_env(cls, timeout: float = 30.0) -> Client:
        """The server at ``DEV8_SERVER_URL``, with the token in ``DEV8_TOKEN`` (if set)."""
        url = os.environ.get(URL_ENV)
        if not url:
            raise InvalidInput(f"{URL_ENV} is not set; e.g. {URL_ENV}=http://127.0.0.1:8700")
        return cls(url, token=os.environ.get(TOKEN_ENV) or None, timeout=timeout)

    @property
    def base_url(self) -> str:
        return self.api.base_url

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Calls that belong to no collection ------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self.api.health()

    def open_tunnel(self, name: str, port: int, owner: str | None = None) -> Tunnel:
        """A blocking byte stream to ``port`` inside the running workspace ``name``
        (``owner``'s, for admins), relayed by the server: ``read()`` (``b""`` at the end),
        ``write(data)``, ``close_write()`` (a half-close), ``close()``. ``NotFound`` if you
        have no such workspace, ``Conflict`` if it is not running."""
        from dev8.client.tunnel import open_tunnel  # websockets only when used

        return open_tunnel(self.api, name, port, owner)

    def login(
        self,
        username: str,
        password: str,
        token_name: str = "cli",
        expires_in_days: int | None = None,
    ) -> dict[str, Any]:
        """A new API token for the user (its ``token`` is shown only in this answer)."""
        return self.api.login(username, password, token_name, expires_in_days)

    def audit(
        self, limit: int = 100, before: int | None = None, actor: str | None = None
    ) -> dict[str, Any]:
        """A page of the audit log, newest first (admins)."""
        return self.api.audit(limit, before, actor)
