"""The short-lived state of one sign-in at an identity provider (state, nonce, PKCE
verifier, where to go after), kept in the browser that started it: an HMAC-signed,
HttpOnly cookie for ``/login/`` that lives ten minutes. No server-side session middleware:
any server process can finish a sign-in another one started."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from authlib.common.security import generate_token  # type: ignore[import-untyped]
from starlette.responses import Response

FLOW_COOKIE = "dev8_sso"
FLOW_PATH = "/login/"
FLOW_SECONDS = 600
_PURPOSE = b"dev8 sign-in flow cookie v1"


@dataclass(frozen=True)
class Flow:
    provider: str
    state: str
    nonce: str
    verifier: str  # PKCE (S256)
    next: str
    expires: int  # Unix time

    @classmethod
    def new(cls, provider: str, next_path: str, seconds: int = FLOW_SECONDS) -> Flow:
        return cls(
            provider=provider,
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=generate_token(64),
            next=next_path,
            expires=int(time.time()) + seconds,
        )


def flow_key(app_cookie_key: bytes) -> bytes:
    """A key for this cookie only, from the app-cookie key (``web.tickets.derive_key`` of
    the server's secret): a flow cookie can never pass for an app cookie, nor the reverse."""
    return hmac.new(app_cookie_key, _PURPOSE, hashlib.sha256).digest()


class FlowCookies:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, flow: Flow) -> str:
        payload = _encode(json.dumps(asdict(flow), separators=(",", ":")).encode())
        return f"{payload}.{_encode(self._mac(payload))}"

    def verify(self, value: str, provider: str, now: float | None = None) -> Flow | None:
        """The flow if ``value`` is one this server signed, for ``provider``, unexpired."""
        payload, _, mac = value.partition(".")
        try:
            valid = hmac.compare_digest(_decode(mac), self._mac(payload))
            flow = Flow(**json.loads(_decode(payload))) if valid else None
        except (ValueError, TypeError, binascii.Error):
            return None
        if flow is None or flow.provider != provider:
            return None
        return flow if (now or time.time()) < flow.expires else None

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).digest()


def states_match(flow: Flow, state: str | None) -> bool:
    return state is not None and hmac.compare_digest(flow.state.encode(), state.encode())


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def set_flow_cookie(response: Response, value: str, dev: bool) -> None:
    """HttpOnly, for ``/login/`` only, SameSite=Lax: the provider's redirect back is a
    top-level navigation from another site, which Lax lets the cookie come along on."""
    response.set_cookie(
        FLOW_COOKIE,
        value,
        max_age=FLOW_SECONDS,
        path=FLOW_PATH,
        secure=not dev,
        httponly=True,
        samesite="lax",
    )


def clear_flow_cookie(response: Response, dev: bool) -> None:
    response.delete_cookie(
        FLOW_COOKIE, path=FLOW_PATH, secure=not dev, httponly=True, samesite="lax"
    )
