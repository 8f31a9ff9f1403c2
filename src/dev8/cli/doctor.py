"""`dev8 doctor`: checks with a verdict and a fix."""

from __future__ import annotations

from dataclasses import asdict

import typer

from dev8.cli.output import console, print_json

STYLE = {
    "ok": "[green]✓ ok   [/]",
    "info": "[blue]i info [/]",
    "warn": "[yellow]! warn [/]",
    "fail": "[red]✗ fail [/]",
    "fixed": "[green]✓ fixed[/]",
}


def doctor(
    name: str | None = typer.Argument(None, help="A workspace to check as well."),
    fix: bool = typer.Option(
        False, "--fix", help="Repair what can be repaired safely (ownership, leftover restores)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run the troubleshooting checks: engine and images; for a workspace, its mounts are
    named volumes (not bind mounts), /home/dev8 and /workspace belong to UID 1000, volumes
    against their quotas (and what uses the space), leftovers of a restore, published ports
    answering. Exits 1 when a check fails."""
    from dev8.cli.context import local_only
    from dev8.service.doctor import FAIL, Doctor

    svc = local_only("doctor", "`dev8 logout` first: it checks this machine's workspaces")
    checks = Doctor(svc).run(name, fix)
    if as_json:
        print_json([asdict(check) for check in checks])
    else:
        for check in checks:
            console.print(
                f"{STYLE[check.verdict]} {check.name:<18} {check.message}", highlight=False
            )
            if check.fix:
                console.print(f"{'':<26}[dim]→ {check.fix}[/]", highlight=False)
    if any(check.verdict == FAIL for check in checks):
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.command()(doctor)
