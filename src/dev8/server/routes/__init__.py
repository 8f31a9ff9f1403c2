"""The API's routers, one per resource. They declare what they need with the dependencies
of ``server.deps`` and call the service (or read the store); they do no other work."""

from __future__ import annotations

from typing import Any

from dev8.server.context import ServerContext
from dev8.server.schemas import ErrorBody, OperationPublic, WorkspaceAccepted, WorkspacePublic
from dev8.service.requests import Accepted

# The error answers every route may give, for the OpenAPI document.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)
}


def accepted_response(accepted: Accepted, context: ServerContext) -> WorkspaceAccepted:
    """A recorded change as the API answers it (202); queued work starts at once."""
    if accepted.operations:
        context.wake()
    return WorkspaceAccepted(
        workspace=WorkspacePublic.of(
            accepted.workspace, context.settings.idle_timeout_s, context.addresses()
        ),
        operations=[OperationPublic.of(operation) for operation in accepted.operations],
    )
