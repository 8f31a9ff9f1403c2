"""The system packages a workspace's user installed, recorded by the tool in the image
(``dev8.agent.packages``) so that a new container brings them back."""

from __future__ import annotations

import json

from dev8.core.errors import CommandFailed, Dev8Error
from dev8.core.workspace import Workspace
from dev8.providers.base import Provider
from dev8.service.workspaces.base import Progress

PACKAGES_TOOL = ["/opt/dev8/venv/bin/python", "-m", "dev8.agent.packages"]


def record_packages(provider: Provider, workspace: Workspace, progress: Progress) -> None:
    """Record installed packages in the running container just before it goes away; a
    failure keeps the last record and says so."""
    progress("recording installed system packages")
    try:
        result = provider.exec(workspace.id, [*PACKAGES_TOOL, "record"], user="root")
    except Dev8Error as exc:
        progress(f"could not record packages ({exc.message}); using the last record")
        return
    if result.exit_code != 0:
        progress("could not record packages; using the last record")


def packages_tool(provider: Provider, workspace: Workspace, *args: str) -> dict:
    """Run the package tool in the running workspace; its JSON answer."""
    result = provider.exec(workspace.id, [*PACKAGES_TOOL, *args], user="root")
    if result.exit_code != 0:
        raise CommandFailed(
            f"the package tool in {workspace.name} failed: "
            f"{result.output.decode(errors='replace').strip()[-200:]}"
        )
    try:
        return dict(json.loads(result.output))
    except ValueError as exc:
        raise CommandFailed(f"the package tool in {workspace.name} answered garbage") from exc
