"""The CAs the client trusts, for its API calls and its tunnels alike: ``SSL_CERT_FILE`` or
``SSL_CERT_DIR`` when set (a company CA), else certifi's bundle. The same rule as httpx's own
default, kept here so that a tunnel can be opened without importing httpx (`ssh dev8.NAME`
pays for every import at each connection)."""

from __future__ import annotations

import os
import ssl


def tls_context() -> ssl.SSLContext:
    if cafile := os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=cafile)
    if capath := os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
