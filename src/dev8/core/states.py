"""What a workspace should be (desired) and what it was last seen to be (observed)."""

from __future__ import annotations

from enum import Enum


class DesiredState(str, Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    REMOVED = "removed"  # container gone; volumes kept until purged


class ObservedState(str, Enum):
    CREATING = "creating"
    STARTING = "starting"  # container running, agent not yet healthy
    RUNNING = "running"  # agent healthy
    UNHEALTHY = "unhealthy"  # container running, agent reports a failing service
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"  # exited while it should run, or restarting in a loop
    MISSING = "missing"  # the container vanished; volumes may remain
    FAILED = "failed"  # the last operation failed
    UNKNOWN = "unknown"  # the engine could not be asked
    REMOVED = "removed"


# Its container is up: the agent can be asked, commands can be run in it.
LIVE = frozenset({ObservedState.STARTING, ObservedState.RUNNING, ObservedState.UNHEALTHY})


class ContainerState(str, Enum):
    """What a backend reports of a workspace's container, in its own provider-neutral words.

    Each backend maps its engine's vocabulary to these; nothing above ``providers/`` ever sees
    the engine's own strings."""

    RUNNING = "running"
    RESTARTING = "restarting"  # the engine is bringing a crashed container back
    PAUSED = "paused"
    CREATED = "created"  # made, never started
    EXITED = "exited"  # stopped, by request or by itself
    MISSING = "missing"  # no container
    UNKNOWN = "unknown"  # the backend reported something it does not know

    def __str__(self) -> str:
        return self.value


# Its processes may run: it must be stopped before its volumes are worked on offline.
ACTIVE_CONTAINER = frozenset(
    {ContainerState.RUNNING, ContainerState.RESTARTING, ContainerState.PAUSED}
)
