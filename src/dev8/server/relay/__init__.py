"""Relayed streams into workspaces (server mode): every byte to a workspace goes through its
agent's ``/relay/{port}`` upgrade (the one door). ``agent`` opens such a stream, ``http``
proxies HTTP over it, ``websocket`` WebSockets, and ``tunnel`` pumps raw bytes for
``dev8 ssh`` and ``dev8 port-forward``."""

from dev8.server.relay.agent import (
    Upstream,
    UpstreamCache,
    live_upstream,
    open_stream,
    relay_socket,
    upstream_for,
)
from dev8.server.relay.http import proxy_http
from dev8.server.relay.websocket import deny, proxy_websocket

__all__ = [
    "Upstream",
    "UpstreamCache",
    "deny",
    "live_upstream",
    "open_stream",
    "proxy_http",
    "proxy_websocket",
    "relay_socket",
    "upstream_for",
]
