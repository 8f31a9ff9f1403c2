"""Looking at workspaces: `dev8 ls`, `status`, `history`, `logs`, `packages`."""

from __future__ import annotations

import sys

import typer

from dev8.cli.context import local_only, workspaces
from dev8.cli.looking import packages_line, show_list, show_status
from dev8.cli.options import JSON, NAME
from dev8.cli.output import console, plain_table, print_json


def ls(as_json: bool = JSON) -> None:
    """List your workspaces with their state as the engine sees it now, and how full their
    volumes are (measured by the agent of a running workspace)."""
    show_list(as_json)


def status(name: str = NAME, as_json: bool = JSON) -> None:
    """A workspace's state, ports and resources, plus what its agent reports when running."""
    show_status(name, as_json)


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
