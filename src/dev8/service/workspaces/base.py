"""What every part of the workspace service shares: its collaborators, who it acts for, and
finding a workspace by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dev8.core.addresses import Addresses
from dev8.core.errors import NotFound
from dev8.core.images import workspace_image
from dev8.core.states import DesiredState
from dev8.core.workspace import Operation, Workspace
from dev8.providers.base import Provider
from dev8.service.agent_client import AgentClient

if TYPE_CHECKING:  # the CLI's read-only commands run the service without SQLAlchemy
    from dev8.store.store import Store

Progress = Callable[[str], None]
HEALTHY_TIMEOUT_S = 120.0


def quiet(_message: str) -> None:
    pass


class ServiceBase:
    """The operations on the workspaces of ``owner``, recorded as done by ``actor`` (the
    owner unless, say, an admin or the server acts on them)."""

    def __init__(
        self,
        *,
        store: Store,
        provider: Provider,
        owner: str,
        authorized_keys: Callable[[], str] | None = None,
        account_dotfiles: Callable[[], str] = lambda: "",
        agent: AgentClient | None = None,
        actor: str | None = None,
        relay: Addresses | None = None,
        default_image: str | None = None,
    ) -> None:
        self.store = store
        # Server mode: the workspace is reached only through its agent (the server relays
        # the IDE, SSH and ports at these addresses), so nothing but the agent is published
        # and the services inside listen on the container's loopback only.
        self.relay = relay
        self.provider = provider
        self.owner = owner
        self.actor = actor or owner
        # The owner's public keys now (None: this service does not manage keys).
        self.authorized_keys = authorized_keys
        # What a workspace created without naming an image runs.
        self.default_image = default_image or workspace_image()
        # The owner's dotfiles repository, for workspaces that do not name their own.
        self.account_dotfiles = account_dotfiles
        self.agent = agent or AgentClient()
        self._running: Operation | None = None  # the operation under way in this service

    def find(self, name: str) -> Workspace:
        """The live workspace ``name``, without asking the engine; ``NotFound`` if there
        is none (a removed one included)."""
        workspace = self.find_known(name)
        if workspace.desired_state is DesiredState.REMOVED:
            raise _not_found(name)
        return workspace

    def find_known(self, name: str) -> Workspace:
        """Like ``find``, and also a removed workspace whose volumes were kept."""
        workspace = self.store.find(self.owner, name)
        if workspace is None:
            raise _not_found(name)
        return workspace


def _not_found(name: str) -> NotFound:
    return NotFound(f"no workspace named {name!r}; `dev8 ls` lists them")
