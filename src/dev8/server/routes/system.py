"""Health, metrics and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from dev8 import __version__
from dev8.server.deps import AdminUser, Context
from dev8.server.routes import ERRORS
from dev8.server.schemas import AuditPage, AuditPublic, Health

router = APIRouter(tags=["system"])
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The server answers (no authentication, no database: what a load balancer asks)."""
    return Health(status="ok", version=__version__)


@router.get("/metrics", response_class=Response, responses={200: {"content": {PROMETHEUS: {}}}})
def metrics(context: Context) -> Response:
    """Prometheus metrics: requests, operations, workspaces by state (no authentication:
    counts only, no names; bind the server to a trusted network)."""
    return Response(context.metrics.render(), media_type=PROMETHEUS)


@router.get("/api/v1/audit", response_model=AuditPage, responses=ERRORS, tags=["audit"])
def audit_log(
    _admin: AdminUser,
    context: Context,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    actor: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Every mutating request, newest first: who, from where, what, and the result."""
    entries = context.store.audit.list(limit=limit, before=before, actor=actor)
    return AuditPage(
        items=[AuditPublic.of(entry) for entry in entries],
        next=entries[-1].seq if len(entries) == limit else None,
    )
