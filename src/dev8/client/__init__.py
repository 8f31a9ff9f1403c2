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

from dev8.client.api import APIClient
from dev8.client.client import Client
from dev8.client.models import Change, Operation, Token, User, Workspace

__all__ = ["APIClient", "Change", "Client", "Operation", "Token", "User", "Workspace"]
