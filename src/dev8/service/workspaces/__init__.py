"""The workspace operations: create, start, stop, restart, rebuild, update, remove, queries.

Every mutating operation takes the workspace's lock, is recorded as an operation (who, what,
when, result, duration, and its progress messages as events), and leaves the stored state
truthful whether it succeeds or fails. The CLI's local mode runs an operation at once
(``start``, ``stop``...); the server records the request and its reconciler runs the same
work later through ``run`` and the action table (``dev8.service.operations``).
"""

from dev8.core.workspace import CreateRequest
from dev8.service.workspaces.actions import (
    LIFECYCLE_ACTIONS,
    REQUESTABLE,
    ActionHandler,
    ActionSpec,
)
from dev8.service.workspaces.base import HEALTHY_TIMEOUT_S, Progress
from dev8.service.workspaces.observation import (
    Observation,
    derive_observed,
    last_activity,
    require_live,
)
from dev8.service.workspaces.packages import PACKAGES_TOOL
from dev8.service.workspaces.service import WorkspaceService

__all__ = [
    "HEALTHY_TIMEOUT_S",
    "LIFECYCLE_ACTIONS",
    "PACKAGES_TOOL",
    "REQUESTABLE",
    "ActionHandler",
    "ActionSpec",
    "CreateRequest",
    "Observation",
    "Progress",
    "WorkspaceService",
    "derive_observed",
    "last_activity",
    "require_live",
]
