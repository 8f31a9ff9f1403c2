"""The Python SDK for `dev8 server`, shaped like docker-py::

    from dev8.client import Client

    client = Client("http://127.0.0.1:8700", token="dev8_...")  # or Client.from_env()
    workspace = client.workspaces.create("demo").wait()
    workspace.stop().wait()
    for operation in workspace.history():
        print(operation.action, operation.result)

``Client`` owns the collections (``workspaces``, ``operations``, ``users``, ``tokens``);
their models make their calls through the low-level ``APIClient`` (``client.api``).
Errors are the classes of ``dev8.core.errors``, mapped back from the API's stable codes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dev8.client.api import APIClient
    from dev8.client.client import Client
    from dev8.client.models import Change, Operation, Token, User, Workspace

__all__ = ["APIClient", "Change", "Client", "Operation", "Token", "User", "Workspace"]

# Imported when first named, so that ``dev8.client.tunnel`` (what `ssh dev8.NAME` runs at
# each connection) does not pay for httpx.
_HOMES = {
    "APIClient": "dev8.client.api",
    "Client": "dev8.client.client",
    **dict.fromkeys(("Change", "Operation", "Token", "User", "Workspace"), "dev8.client.models"),
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
