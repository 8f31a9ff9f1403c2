"""`dev8 volume ls|inspect`, `dev8 du`, `dev8 quota` and `dev8 clean`."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import typer

from dev8.cli.output import console, err_console, print_json, spinner
from dev8.core.quotas import (
    ENFORCEMENT_NOTE,
    QUOTA_ROLES,
    effective_quotas,
    format_bytes,
    parse_quota,
)

if TYPE_CHECKING:
    from rich.table import Table

    from dev8.service.volumes import VolumeRow, VolumeService

NAME = typer.Argument(..., help="Workspace name.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
app = typer.Typer(help="dev8's volumes: list and inspect them.", no_args_is_help=True)
LEVEL_STYLE = {"ok": "", "warning": "yellow", "critical": "red", "over": "bold red"}


def volumes(command: str) -> VolumeService:
    from dev8.cli.context import local_only
    from dev8.service.volumes import VolumeService

    instead = "`dev8 status NAME` shows how full the volumes are"
    return VolumeService(local_only(command, instead))


def _row_dict(row: VolumeRow) -> dict:
    use = row.use
    return {
        "name": row.info.name,
        "workspace": row.workspace,
        "workspace_id": row.info.workspace_id,
        "role": row.info.role,
        "size_bytes": row.size,
        "quota_bytes": row.quota,
        "quota_percent": use.percent if use else None,
        "quota_level": use.level if use else None,
        "orphan": row.orphan,
        "driver": row.info.driver,
        "mountpoint": row.info.mountpoint,
        "created_at": row.info.created_at,
        "labels": dict(row.info.labels),
    }


def _table(rows: list[VolumeRow], width: int) -> Table:
    """Volume and workspace names whole; size, use and quota as the width allows."""
    from dev8.cli.tables import Column, render

    columns = [
        Column("VOLUME", 0, cells=[row.info.name for row in rows]),
        Column("WORKSPACE", 0, cells=[row.workspace or "[red](gone)[/]" for row in rows]),
        Column("ROLE", 1, cells=[row.info.role for row in rows]),
        Column("SIZE", 2, cells=[_size(row.size) for row in rows]),
        Column("QUOTA", 4, cells=[format_bytes(row.quota) if row.quota else "-" for row in rows]),
        Column("USE", 3, cells=[_use(row) for row in rows]),
    ]
    return render(columns, width)


def _size(size: int | None) -> str:
    return format_bytes(size) if size is not None else "-"


def _use(row: VolumeRow) -> str:
    if row.use is None:
        return "-"
    style = LEVEL_STYLE.get(row.use.level, "")
    return f"[{style}]{row.use.percent}%[/]" if style else f"{row.use.percent}%"


@app.command("ls")
def ls(
    orphans: bool = typer.Option(
        False, "--orphans", help="Only volumes whose workspace is gone (purged or never recorded)."
    ),
    as_json: bool = JSON,
) -> None:
    """Every dev8 volume with its workspace, role, size and quota use."""
    rows = volumes("volume ls").list(orphans=orphans)
    if as_json:
        print_json([_row_dict(row) for row in rows])
    elif not rows:
        console.print("No orphan volumes." if orphans else "No dev8 volumes.")
    else:
        console.print(_table(rows, console.width))


@app.command("inspect")
def inspect(
    name: str = typer.Argument(..., help="A volume name, or a workspace name for all its volumes."),
    as_json: bool = JSON,
) -> None:
    """A volume's details: workspace, role, size, quota, driver, mount point and labels."""
    rows = volumes("volume inspect").inspect(name)
    if as_json:
        print_json([_row_dict(row) for row in rows])
        return
    for row in rows:
        data = _row_dict(row)
        console.print(f"[bold]{row.info.name}[/]")
        for key in ("workspace", "workspace_id", "role", "driver", "mountpoint", "created_at"):
            console.print(f"  {key:<13} {data[key] or '-'}")
        size = format_bytes(row.size) if row.size is not None else "-"
        quota = (
            f"{format_bytes(row.quota)} ({row.use.percent}% used)"
            if row.quota and row.use
            else "none"
        )
        console.print(f"  {'size':<13} {size}")
        console.print(f"  {'quota':<13} {quota}")
        for key, value in sorted(row.info.labels.items()):
            console.print(f"  [dim]{key}={value}[/]")


def du(
    name: str = NAME,
    depth: int = typer.Option(3, "--depth", help="How deep to look for large directories."),
    top: int = typer.Option(10, "--top", help="How many directories to show per volume."),
    as_json: bool = JSON,
) -> None:
    """What uses the space: bytes per volume and the largest directories, measured now."""
    svc = volumes("du")
    usages = svc.du(name, depth=depth, top=top)
    limits = effective_quotas(svc.workspaces.find(name).quotas)
    if as_json:
        print_json([{**asdict(u), "quota_bytes": limits.get(u.role)} for u in usages])
        return
    for usage in usages:
        quota = f" of {format_bytes(limits[usage.role])}" if usage.role in limits else ""
        console.print(f"[bold]{usage.role}[/] {usage.path}: {format_bytes(usage.total)}{quota}")
        for path, size in usage.largest:
            console.print(f"  {format_bytes(size):>10}  {path}", highlight=False)


def quota(
    name: str = NAME,
    home: str | None = typer.Option(None, "--home", help="New limit for /home/dev8, e.g. 30g."),
    workspace: str | None = typer.Option(
        None, "--workspace", help="New limit for /workspace, e.g. 200g."
    ),
    bound: bool = typer.Option(
        False,
        "--bound",
        help="Move volumes made before quotas were enforced onto bounded ones (data kept).",
    ),
    as_json: bool = JSON,
) -> None:
    """Show a workspace's volume limits and use, or change them (--home, --workspace).

    Changing a limit makes the container again on the same volumes (a running workspace is
    restarted) so its agent warns against the new one. Where dev8 runs as root beside its
    engine, a limit is enforced (`dev8 doctor` says whether): a volume is then a file system
    of that size, which grows but never shrinks. Elsewhere dev8 warns at 80% and 95%.

    Volumes made before enforcement was on stay unbounded until `--bound` copies them onto
    bounded ones (the workspace restarts; refused if a volume holds more than its limit).
    """
    svc = volumes("quota")
    limits = {
        role: parse_quota(value)
        for role, value in (("home", home), ("workspace", workspace))
        if value is not None
    }
    if limits or bound:
        with spinner(f"Changing the quotas of {name}") as progress:
            svc.set_quotas(name, limits, progress, bound_existing=bound)
    ws = svc.workspaces.get(name)
    used = svc.used(ws)
    effective = effective_quotas(ws.quotas)
    if as_json:
        print_json(
            {
                role: {"limit_bytes": effective[role], "used_bytes": used.get(role)}
                for role in QUOTA_ROLES
            }
        )
        return
    if limits or bound:
        console.print(f"[green]✓[/] Quotas of {name} changed")
    for role in QUOTA_ROLES:
        default = "" if role in ws.quotas else " [dim](default)[/]"
        use = f", {format_bytes(used[role])} used" if role in used else ""
        console.print(f"  {role:<10} {format_bytes(effective[role])}{default}{use}")
    err_console.print(f"[dim]note: {ENFORCEMENT_NOTE}[/]")


def clean(name: str = NAME, as_json: bool = JSON) -> None:
    """Empty the package-manager caches the seed lists (npm, pip, cargo, apt) and report
    the bytes reclaimed. The apt package pool that restores packages after a rebuild stays."""
    cleaned = volumes("clean").clean(name)
    if as_json:
        print_json([{**asdict(c), "reclaimed": c.reclaimed} for c in cleaned])
        return
    for item in cleaned:
        console.print(f"  {item.cache:<6} {format_bytes(item.reclaimed):>10} reclaimed")
    total = sum(item.reclaimed for item in cleaned)
    console.print(f"[green]✓[/] Reclaimed {format_bytes(total)} in {name}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="volume")
    root.command()(du)
    root.command()(quota)
    root.command()(clean)
