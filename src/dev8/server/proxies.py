"""Which reverse proxies the server believes (``DEV8_TRUSTED_PROXIES``): the client address
and scheme a proxy puts in ``X-Forwarded-For``/``-Proto`` are taken only from a direct peer
listed here. The default lists none: a CLI user on the server's own host connects from
127.0.0.1 too, and could otherwise name any address the audit log then records.

The app applies the setting itself (uvicorn's ``ProxyHeadersMiddleware`` in
``dev8.server.app``), so the rule is the same whichever ASGI server runs it; `dev8 server`
turns uvicorn's own handling off."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator


def trusted_proxies(value: str) -> list[str]:
    """The addresses and networks (CIDR) of a comma-separated list; ``ValueError`` naming the
    first entry that is neither."""
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"{entry[:60]!r} is not an address or network (CIDR), e.g. 10.0.0.5 or "
                "10.0.0.0/8; 0.0.0.0/0,::/0 believes anyone"
            ) from None
    return entries


def _validated(value: str) -> str:
    trusted_proxies(value)
    return value


TrustedProxies = Annotated[str, AfterValidator(_validated)]
