"""/api/v1/workspaces: the workspaces, their changes (202 + operations) and history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import TypeAdapter

from dev8.core.resources import DEFAULT_PRESET, PRESETS, Resources
from dev8.core.states import DesiredState, ObservedState
from dev8.core.workspace import Action, CreateRequest
from dev8.server.context import ServerContext
from dev8.server.deps import (
    Context,
    KnownWorkspace,
    ListingScope,
    OwnedWorkspace,
    Scope,
    Scoped,
    WorkspaceName,
)
from dev8.server.routes import ERRORS, accepted_response
from dev8.server.schemas import (
    OperationPublic,
    RebuildRequest,
    VolumePublic,
    WorkspaceAccepted,
    WorkspaceCreate,
    WorkspacePage,
    WorkspacePublic,
    WorkspaceUpdate,
    check_env_keys,
    decode_cursor,
    encode_cursor,
    workspace_fields,
)
from dev8.store.store import UNSET

router = APIRouter(prefix="/api/v1/workspaces", tags=["workspaces"])
_PAGE = TypeAdapter(dict[str, Any])


def _resources(body: WorkspaceCreate) -> Resources:
    base = PRESETS[body.size or DEFAULT_PRESET]
    return Resources(body.cpus or base.cpus, body.memory_mb or base.memory_mb)


@router.get("", response_model=WorkspacePage, responses=ERRORS)
def list_workspaces(
    scope: ListingScope,
    context: Context,
    state: Annotated[list[ObservedState] | None, Query(description="Observed states.")] = None,
    desired_state: DesiredState | None = None,
    name_prefix: Annotated[str | None, Query(max_length=63)] = None,
    include_removed: bool = False,
    after: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """Workspaces in (owner, name) order, a page at a time, with their recorded state (the
    reconciler keeps it current; no engine is asked)."""
    found = context.store.page(
        owner=scope.owner,
        states=state or (),
        desired=desired_state,
        name_prefix=name_prefix,
        include_removed=include_removed,
        after=decode_cursor(after) if after else None,
        limit=limit,
    )
    default_idle, addresses = context.settings.idle_timeout_s, context.addresses()
    last = found[-1] if len(found) == limit else None
    page = {
        "items": [workspace_fields(workspace, default_idle, addresses) for workspace in found],
        "next": encode_cursor(last.owner, last.name) if last else None,
    }
    # The fields of ``WorkspacePublic``, from records: valid by construction, so serialised
    # directly instead of validated again (the hot path of every dashboard and `dev8 ls`).
    return Response(_PAGE.dump_json(page), media_type="application/json")


@router.post("", status_code=202, response_model=WorkspaceAccepted, responses=ERRORS)
def create_workspace(body: WorkspaceCreate, scope: Scoped, context: Context) -> WorkspaceAccepted:
    """Record a new workspace and queue its creation (and start, unless ``start`` is
    false). A removed workspace of the same name is brought back on its volumes."""
    check_env_keys(body.env)
    check_env_keys(body.secrets)
    fixed = {role: port for role, port in (("ide", body.ide_port), ("ssh", body.ssh_port)) if port}
    request = CreateRequest(
        name=body.name,
        image=body.image or "",  # the service's default: the server's first image
        resources=_resources(body),
        env=body.env,
        secrets=body.secrets,
        code_server_password=body.ide_password,
        host_ports=fixed,
        idle_timeout_s=body.idle_timeout_s,
        dotfiles_repo=body.dotfiles_repo,
        quotas={role: size for role, size in body.quotas.items()},
    )
    return accepted_response(scope.requests.create(request, start=body.start), context)


@router.get("/{name}", response_model=WorkspacePublic, responses=ERRORS)
def get_workspace(workspace: OwnedWorkspace, context: Context) -> WorkspacePublic:
    return WorkspacePublic.of(workspace, context.settings.idle_timeout_s, context.addresses())


@router.patch(
    "/{name}",
    response_model=WorkspaceAccepted,
    responses={**ERRORS, 202: {"model": WorkspaceAccepted}},
)
def update_workspace(
    name: WorkspaceName, body: WorkspaceUpdate, scope: Scoped, context: Context
) -> Any:
    """Change resources, idle timeout or IDE password. The idle timeout applies at once
    (200); new resources or password need a new container, made by a queued ``update``
    operation (202)."""
    workspace = scope.service.find(name)
    resources = None
    if body.cpus is not None or body.memory_mb is not None:
        resources = Resources(
            body.cpus or workspace.resources.cpus, body.memory_mb or workspace.resources.memory_mb
        )
    accepted = scope.requests.update(
        name,
        resources=resources,
        idle_timeout_s=body.idle_timeout_s if "idle_timeout_s" in body.model_fields_set else UNSET,
        ide_password=body.ide_password,
    )
    result = accepted_response(accepted, context)
    if accepted.operations:
        return JSONResponse(result.model_dump(mode="json"), status_code=202)
    return result


@router.delete("/{name}", status_code=202, response_model=WorkspaceAccepted, responses=ERRORS)
def delete_workspace(
    name: WorkspaceName, scope: Scoped, context: Context, purge: bool = False
) -> WorkspaceAccepted:
    """Remove the container (volumes stay; creating the name again adopts them), or with
    ``purge`` destroy the volumes and the record too."""
    return accepted_response(scope.requests.remove(name, purge=purge), context)


def _action(
    name: str, action: Action, scope: Scope, context: ServerContext, image: str | None = None
) -> WorkspaceAccepted:
    return accepted_response(scope.requests.action(name, action, image=image), context)


@router.post("/{name}/start", status_code=202, response_model=WorkspaceAccepted, responses=ERRORS)
def start_workspace(name: WorkspaceName, scope: Scoped, context: Context) -> WorkspaceAccepted:
    return _action(name, Action.START, scope, context)


@router.post("/{name}/stop", status_code=202, response_model=WorkspaceAccepted, responses=ERRORS)
def stop_workspace(name: WorkspaceName, scope: Scoped, context: Context) -> WorkspaceAccepted:
    return _action(name, Action.STOP, scope, context)


@router.post("/{name}/restart", status_code=202, response_model=WorkspaceAccepted, responses=ERRORS)
def restart_workspace(name: WorkspaceName, scope: Scoped, context: Context) -> WorkspaceAccepted:
    return _action(name, Action.RESTART, scope, context)


@router.post("/{name}/rebuild", status_code=202, response_model=WorkspaceAccepted, responses=ERRORS)
def rebuild_workspace(
    name: WorkspaceName, scope: Scoped, context: Context, body: RebuildRequest | None = None
) -> WorkspaceAccepted:
    """A new container from the image (default: the workspace's image reference, resolved
    again) on the same volumes."""
    return _action(name, Action.REBUILD, scope, context, image=body.image if body else None)


@router.get("/{name}/operations", response_model=list[OperationPublic], responses=ERRORS)
def workspace_history(
    name: WorkspaceName, scope: Scoped, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[OperationPublic]:
    """The workspace's operations, newest first (its build history)."""
    return [OperationPublic.of(operation) for operation in scope.service.history(name, limit)]


@router.get("/{name}/volumes", response_model=list[VolumePublic], responses=ERRORS)
def workspace_volumes(workspace: KnownWorkspace, scope: Scoped) -> list[VolumePublic]:
    """The workspace's volumes (a removed workspace keeps them until purged), with their
    usage as its agent measured it when it runs."""
    usage = scope.service.disk_usage(workspace)
    return [
        VolumePublic.of(volume, usage.get(volume.role, {}))
        for volume in scope.service.volumes_of(workspace)
    ]


@router.get("/{name}/status", responses=ERRORS)
def workspace_agent_status(workspace: OwnedWorkspace, scope: Scoped) -> dict[str, Any]:
    """What the workspace's agent reports now: services, activity, disk, SSH host keys,
    packages. 409 when it is not running."""
    return scope.service.agent_status_of(workspace)


@router.get(
    "/{name}/logs",
    response_class=PlainTextResponse,
    responses={**ERRORS, 200: {"content": {"text/plain": {}}}},
)
def workspace_logs(
    name: WorkspaceName,
    scope: Scoped,
    tail: Annotated[int, Query(ge=1, le=10000)] = 200,
) -> PlainTextResponse:
    """The last lines of the workspace's output (agent, sshd, code-server); 409 when it has
    no container."""
    chunks = scope.service.logs(name, tail=tail)
    return PlainTextResponse(b"".join(chunks).decode(errors="replace"))
