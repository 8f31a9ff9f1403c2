"""The low-level client: requests, JSON, downloads, and every error answer mapped back to
the dev8 class its stable code names (re-raised ``from`` the transport's error)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from dev8.client.tls import tls_context
from dev8.core.errors import ERRORS_BY_CODE, AlreadyExists, Dev8Error, ServerUnavailable


class APIClient:
    """A connection to a dev8 server, one method per kind of call; the models and
    collections of ``dev8.client`` are built on it. ``token`` is an API token (``dev8
    login`` makes one); without it only ``login`` and ``health`` work."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.ssl_context = tls_context()  # the tunnels' WebSockets use it too
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=self.ssl_context,
        )

    def close(self) -> None:
        self._http.close()

    # Calls ------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; any non-2xx answer raises the dev8 error its code names."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ServerUnavailable(f"the dev8 server at {self.base_url} timed out") from exc
        except httpx.TransportError as exc:
            raise ServerUnavailable(
                f"cannot reach the dev8 server at {self.base_url}: {exc}"
            ) from exc
        if response.is_success:
            return response
        raise error_from(response)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def download(self, path: str, destination: Path, **kwargs: Any) -> Path:
        """Stream ``path`` into ``destination`` through a temporary file beside it, so that
        an interrupted download leaves nothing that looks complete."""
        if destination.exists():
            raise AlreadyExists(f"{destination} exists; choose another name or directory")
        partial = destination.with_name(f".{destination.name}.partial")
        try:
            with self._http.stream("GET", path, **kwargs) as response:
                if not response.is_success:
                    response.read()
                    raise error_from(response)
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes(1 << 20):
                        handle.write(chunk)
            os.link(partial, destination)  # fails rather than overwrite
        except httpx.TransportError as exc:
            raise ServerUnavailable(f"downloading from {self.base_url} failed: {exc}") from exc
        except FileExistsError:
            raise AlreadyExists(f"{destination} appeared meanwhile; nothing overwritten") from None
        finally:
            partial.unlink(missing_ok=True)
        return destination

    def health(self) -> dict[str, Any]:
        return self.json("GET", "/healthz")

    def login(
        self,
        username: str,
        password: str,
        token_name: str = "cli",
        expires_in_days: int | None = None,
    ) -> dict[str, Any]:
        """A new API token for the user (its ``token`` is shown only in this answer)."""
        body: dict[str, Any] = {"username": username, "password": password}
        body["token_name"] = token_name
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return self.json("POST", "/api/v1/auth/login", json=body)

    def audit(
        self, limit: int = 100, before: int | None = None, actor: str | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        if actor is not None:
            params["actor"] = actor
        return self.json("GET", "/api/v1/audit", params=params)


def error_from(response: httpx.Response) -> Dev8Error:
    """The dev8 error an API answer names, or a generic one for anything else."""
    return error_of(response.status_code, response.content, str(response.request.url))


def error_of(status: int, body: bytes, url: str) -> Dev8Error:
    """The dev8 error a refusal's JSON body (``{"error": code, "message": line}``) names, or
    a generic one naming ``status`` and ``url`` for any other body."""
    try:
        answer = json.loads(body)
        code, message = answer["error"], answer["message"]
    except (ValueError, KeyError, TypeError):
        text = body.decode(errors="replace").strip()
        first = text.splitlines()[0][:200] if text else ""
        return Dev8Error(f"HTTP {status} from {url}: {first}")
    return ERRORS_BY_CODE.get(str(code), Dev8Error)(str(message))
