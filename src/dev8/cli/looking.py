"""`dev8 ls` and `dev8 status NAME`: the workspaces as the engine sees them now.

No Typer here: ``dev8.cli.main`` runs the plain forms of these two commands directly (Typer
and the pydantic it brings cost more than the command), and ``dev8.cli.inspect`` declares
them for Typer. Both look through ``context.looked``, which in local mode reads the
database and the engine without their heavy libraries whenever nothing needs recording.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from dev8.cli.context import looked
from dev8.cli.output import console, print_json
from dev8.core.errors import Dev8Error
from dev8.core.states import LIVE

if TYPE_CHECKING:
    from dev8.cli.backends import WorkspaceBackend
    from dev8.core.workspace import Workspace

AGENT_QUERIES = 8  # asked at once by `dev8 ls`


def show_list(as_json: bool = False) -> None:
    """`dev8 ls`: the workspaces, their state and how full their volumes are."""
    from dev8.cli.render import disk_dict, disk_uses, workspace_dict, workspace_table

    listed = looked(_listing)
    uses = {ws.id: disk_uses(ws, agent) for ws, agent in listed}
    found = [ws for ws, _ in listed]
    if as_json:
        print_json([{**workspace_dict(ws), "disk": disk_dict(uses[ws.id])} for ws in found])
    elif not found:
        console.print("No workspaces yet. Create one with `dev8 up NAME`.")
    else:
        console.print(workspace_table(found, uses, console.width))


def _listing(backend: WorkspaceBackend) -> list[tuple[Workspace, dict | None]]:
    backend.ping()
    found = backend.list()
    with ThreadPoolExecutor(AGENT_QUERIES) as pool:
        agents = list(pool.map(partial(agent_status, backend), found))
    return list(zip(found, agents, strict=True))


def agent_status(backend: WorkspaceBackend, workspace: Workspace) -> dict | None:
    """What the agent of a live workspace reports, or the reason it could not be asked."""
    if workspace.observed_state not in LIVE:
        return None
    try:
        return backend.agent_status_of(workspace)
    except (Dev8Error, ValueError) as exc:
        return {"error": str(exc)}


def show_status(name: str, as_json: bool = False) -> None:
    """`dev8 status NAME`: state, ports, resources, and what the agent reports."""
    from dev8.cli.render import disk_dict, disk_uses, workspace_dict

    workspace, agent = looked(partial(_observed, name))
    if as_json:
        uses = disk_dict(disk_uses(workspace, agent))
        print_json({**workspace_dict(workspace), "agent": agent, "disk": uses})
        return
    _print_status(workspace, agent)


def _observed(name: str, backend: WorkspaceBackend) -> tuple[Workspace, dict | None]:
    backend.ping()
    workspace = backend.get(name)
    return workspace, agent_status(backend, workspace)


def _print_status(workspace: Workspace, agent: dict | None) -> None:
    from rich.markup import escape

    from dev8.cli.render import disk_uses, state_text, use_text
    from dev8.core.images import short_image_id

    message = f"  [dim]{escape(workspace.status_message)}[/]" if workspace.status_message else ""
    console.print(f"[bold]{workspace.name}[/] ({workspace.id})  {state_text(workspace)}{message}")
    console.print(f"  image      {workspace.image_ref} ({short_image_id(workspace.image_id)})")
    console.print(f"  resources  {workspace.resources.describe()}")
    uses = disk_uses(workspace, agent)
    if uses:
        console.print(f"  disk       {', '.join(use_text(use) for use in uses)}")
    if workspace.ports:
        console.print(f"  IDE        {workspace.ide_url}")
        ssh = workspace.ports.get("ssh")
        console.print(f"  SSH        127.0.0.1:{ssh}  (dev8 ssh {workspace.name})")
    if agent and "services" in agent:
        _print_agent(agent)
    elif agent and "error" in agent:
        console.print(f"  [yellow]agent[/]      {escape(agent['error'])}")


def _print_agent(agent: dict) -> None:
    from rich.markup import escape

    for service_name, info in agent["services"].items():
        console.print(
            f"  {service_name:<10} {info['state']}, restarts {info['restarts']}"
            + (f", {info['message']}" if info.get("message") else "")
        )
    packages = agent.get("packages") or {}
    if packages:
        console.print(f"  packages   {packages_line(packages)}")
    dotfiles = agent.get("dotfiles")
    if dotfiles:
        console.print(f"  dotfiles   {escape(dotfiles_line(dotfiles))}")
    for warning in agent.get("warnings", []):
        console.print(f"  [yellow]warning[/]    {warning}")


def dotfiles_line(dotfiles: dict) -> str:
    """E.g. "installed (https://github.com/me/dotfiles)"; a failure points at its log."""
    line = f"{dotfiles.get('result', 'unknown')} ({dotfiles.get('repo', '?')})"
    if str(dotfiles.get("result", "")).startswith("failed"):
        line += f"; log: {dotfiles.get('log', '')}"
    return line


def packages_line(packages: dict) -> str:
    """The package record and how its last restore went, in one line."""
    report = packages.get("restore") or {}
    line = f"{packages.get('recorded', 0)} recorded"
    if not report:
        return line
    took = ""
    if report.get("finished_at") and report.get("started_at"):
        took = f" in {report['finished_at'] - report['started_at']:.1f} s"
    line += f"; last restore {report.get('status', '?')}{took}"
    if report.get("offline") or report.get("network"):
        offline, network = len(report.get("offline", [])), len(report.get("network", []))
        line += f" ({offline} from cache, {network} from network)"
    if report.get("missing"):
        line += f"; [red]missing: {', '.join(report['missing'])}[/] (retried at next start)"
    return line
