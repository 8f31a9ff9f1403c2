"""Looking at workspaces: `dev8 ls`, `status`, `history`, `logs`, `packages`."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import typer

from dev8.cli.context import local_only, workspaces
from dev8.cli.options import JSON, NAME
from dev8.cli.output import console, plain_table, print_json
from dev8.core.errors import Dev8Error
from dev8.core.states import LIVE
from dev8.core.workspace import Workspace

AGENT_QUERIES = 8  # asked at once by `dev8 ls`


def ls(as_json: bool = JSON) -> None:
    """List your workspaces with their state as the engine sees it now, and how full their
    volumes are (measured by the agent of a running workspace)."""
    from dev8.cli.render import disk_dict, disk_uses, workspace_dict, workspace_table

    backend = workspaces()
    backend.ping()
    found = backend.list()
    with ThreadPoolExecutor(AGENT_QUERIES) as pool:
        agents = list(pool.map(agent_status, found))
    uses = {ws.id: disk_uses(ws, agent) for ws, agent in zip(found, agents, strict=True)}
    if as_json:
        print_json([{**workspace_dict(ws), "disk": disk_dict(uses[ws.id])} for ws in found])
    elif not found:
        console.print("No workspaces yet. Create one with `dev8 up NAME`.")
    else:
        console.print(workspace_table(found, uses, console.width))


def agent_status(workspace: Workspace) -> dict | None:
    """What the agent of a live workspace reports, or the reason it could not be asked."""
    if workspace.observed_state not in LIVE:
        return None
    try:
        return workspaces().agent_status_of(workspace)
    except (Dev8Error, ValueError) as exc:
        return {"error": str(exc)}


def status(name: str = NAME, as_json: bool = JSON) -> None:
    """A workspace's state, ports and resources, plus what its agent reports when running."""
    from dev8.cli.render import disk_dict, disk_uses, workspace_dict

    backend = workspaces()
    backend.ping()
    workspace = backend.get(name)
    agent = agent_status(workspace)
    if as_json:
        uses = disk_dict(disk_uses(workspace, agent))
        print_json({**workspace_dict(workspace), "agent": agent, "disk": uses})
        return
    _print_status(workspace, agent)


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


def packages(
    name: str = NAME,
    forget: list[str] = typer.Option(
        [], "--forget", help="Stop recording this package (repeatable)."
    ),
    as_json: bool = JSON,
) -> None:
    """System packages you installed with apt that come back after `dev8 rebuild`, and how
    the last restore went. `--forget PKG` drops one from the record. Local mode only."""
    service = local_only("packages", "`dev8 status NAME` shows the package record")
    data = service.packages(name, forget or None)
    if as_json:
        print_json(data)
        return
    if forget:
        console.print(f"[green]✓[/] no longer recorded: {', '.join(forget)}")
    _print_packages(data["recorded"], data.get("restore") or {})


def _print_packages(recorded: dict, report: dict) -> None:
    if not recorded["packages"]:
        console.print(
            "No system packages recorded yet: `sudo apt install ...` in the workspace records them."
        )
    missing = set(report.get("missing", []))
    table = plain_table("PACKAGE", "VERSION", "STATE")
    for package, version in sorted(recorded["packages"].items()):
        held = " (held)" if package in recorded.get("holds", []) else ""
        state = "[red]missing[/]" if package in missing else "installed"
        table.add_row(package, version + held, state)
    if recorded["packages"]:
        console.print(table)
    extras = [
        f"{len(recorded.get('files', {}))} apt source/key file(s)",
        f"{len(recorded.get('conffiles', []))} edited config file(s)",
        f"{len(recorded.get('alternatives', {}))} alternative(s)",
    ]
    console.print("[dim]Also recorded: " + ", ".join(extras) + "[/]")
    if report:
        summary = packages_line({"recorded": len(recorded["packages"]), "restore": report})
        console.print(f"Last restore: {summary}")
        for error in report.get("errors", []):
            console.print(f"  [red]error[/] {error}")


def history(
    name: str = NAME,
    as_json: bool = JSON,
    limit: int = typer.Option(50, help="How many operations to show."),
) -> None:
    """What happened to a workspace: every operation, who ran it, the result and duration."""
    from dev8.cli.render import history_table, operation_dict

    operations = workspaces().history(name, limit)
    if as_json:
        print_json([operation_dict(op) for op in operations])
    else:
        console.print(history_table(operations, console.width))


def logs(
    name: str = NAME,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new output."),
    tail: int | None = typer.Option(None, "--tail", help="Only the last N lines."),
) -> None:
    """The workspace's output: the agent, sshd and code-server."""
    out = sys.stdout.buffer
    for chunk in workspaces().logs(name, follow=follow, tail=tail):
        out.write(chunk)
        out.flush()


def register(app: typer.Typer) -> None:
    for command in (ls, status, history, logs, packages):
        app.command()(command)
