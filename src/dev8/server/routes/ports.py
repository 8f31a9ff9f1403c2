"""/api/v1/workspaces/{name}/ports: the ports a workspace shares beyond its owner. A port
not listed is private."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from dev8.core.addresses import Addresses
from dev8.core.errors import Forbidden
from dev8.core.workspace import Workspace
from dev8.server.deps import Context, OwnedWorkspace
from dev8.server.routes import ERRORS
from dev8.server.schemas.ports import PortPublic, PortSharingUpdate
from dev8.server.settings import Settings
from dev8.store.ports import SharedPort, Sharing
from dev8.store.store import utcnow

router = APIRouter(prefix="/api/v1/workspaces/{name}/ports", tags=["ports"])
PortNumber = Annotated[int, Path(ge=1, le=65535, description="A port inside the workspace.")]


def _public(shared: SharedPort, workspace: Workspace, settings: Settings) -> PortPublic:
    addresses = Addresses((settings.public_url or "").rstrip("/"), settings.apps_domain)
    url = addresses.port(workspace.owner, workspace.name, shared.port)
    return PortPublic(
        port=shared.port, sharing=shared.sharing, url=url, updated_at=shared.updated_at
    )


@router.get("", response_model=list[PortPublic], responses=ERRORS)
def list_ports(workspace: OwnedWorkspace, context: Context) -> list[PortPublic]:
    """The shared ports (the others are private)."""
    shared = context.store.ports.list(workspace.id)
    return [_public(port, workspace, context.settings) for port in shared]


@router.put("/{port}", response_model=PortPublic, responses=ERRORS)
def share_port(
    port: PortNumber, body: PortSharingUpdate, workspace: OwnedWorkspace, context: Context
) -> PortPublic:
    cap = Sharing(context.settings.max_port_sharing)
    if body.sharing.rank > cap.rank:
        raise Forbidden(f"this server lets ports be shared {cap.value} at most")
    shared = context.store.ports.share(workspace.id, port, body.sharing, utcnow())
    return _public(shared, workspace, context.settings)


@router.delete("/{port}", status_code=204, responses=ERRORS)
def unshare_port(port: PortNumber, workspace: OwnedWorkspace, context: Context) -> Response:
    """Back to private."""
    context.store.ports.unshare(workspace.id, port)
    return Response(status_code=204)
