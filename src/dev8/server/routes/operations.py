"""/api/v1/operations: one operation with its progress events (what a client follows)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from dev8.server.deps import Context, VisibleOperation
from dev8.server.routes import ERRORS
from dev8.server.schemas import EventPublic, OperationDetail, OperationPublic

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])


@router.get("/{operation_id}", response_model=OperationDetail, responses=ERRORS)
def get_operation(operation: VisibleOperation, context: Context) -> OperationDetail:
    events = context.store.events(operation.id)
    return OperationDetail(
        **OperationPublic.of(operation).model_dump(), events=[EventPublic.of(e) for e in events]
    )


@router.get("/{operation_id}/events", response_model=list[EventPublic], responses=ERRORS)
def operation_events(
    operation: VisibleOperation,
    context: Context,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[EventPublic]:
    """Events after the ``seq`` ``after``, oldest first: poll with the last seq seen."""
    return [EventPublic.of(event) for event in context.store.events(operation.id, after, limit)]
