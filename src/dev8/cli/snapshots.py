"""`dev8 snapshot create|ls|restore|rm|check|repo`: restic snapshots of workspaces."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING

import typer

from dev8.cli.context import local_snapshots, snapshots
from dev8.cli.output import confirm_replace, console, plain_table, print_json, took
from dev8.cli.progress import transfer
from dev8.core.quotas import format_bytes

if TYPE_CHECKING:
    from dev8.service.snapshots import SnapshotService

NAME = typer.Argument(..., help="Workspace name.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
KEEP_LAST = typer.Option(None, "--keep-last", help="Keep the N newest snapshots.")
KEEP_DAILY = typer.Option(None, "--keep-daily", help="Keep the newest snapshot of each of N days.")
KEEP_WEEKLY = typer.Option(None, "--keep-weekly", help="Keep the newest of each of N weeks.")
app = typer.Typer(
    help="Incremental, deduplicated, checksummed snapshots of a workspace's volumes (restic).",
    no_args_is_help=True,
)


def _repository(command: str) -> SnapshotService:
    """The local snapshot service, for the commands that manage its repository."""
    instead = "the server's administrator manages its snapshot repository"
    return local_snapshots(f"snapshot {command}", instead)


@app.command()
def create(
    name: str = NAME,
    keep_last: int | None = KEEP_LAST,
    keep_daily: int | None = KEEP_DAILY,
    keep_weekly: int | None = KEEP_WEEKLY,
) -> None:
    """Snapshot all three volumes. Only what changed since the last snapshot is read and
    stored; with --keep-..., older snapshots the policy does not keep are removed."""
    started = time.monotonic()
    with transfer() as progress:
        result = snapshots().create(name, keep_last, keep_daily, keep_weekly, progress)
    console.print(
        f"[green]✓[/] Snapshot {result.snapshot_id} of {name}: {result.files_new} new, "
        f"{result.files_changed} changed, {result.files_unmodified} unchanged files; "
        f"{format_bytes(result.data_added)} added of {format_bytes(result.total_bytes)} "
        f"{took(started)}"
    )
    if result.removed:
        console.print(f"  removed by the retention policy: {', '.join(result.removed)}")


@app.command("ls")
def ls(name: str = NAME, as_json: bool = JSON) -> None:
    """A workspace's snapshots, oldest first."""
    found = snapshots().list(name)
    if as_json:
        print_json([{**asdict(s), "volumes": s.roles} for s in found])
        return
    if not found:
        console.print(f"No snapshots of {name} yet: `dev8 snapshot create {name}`.")
        return
    table = plain_table("ID", "TIME", "VOLUMES")
    for snap in found:
        table.add_row(snap.short_id, snap.time[:19].replace("T", " "), ", ".join(snap.roles))
    console.print(table)


@app.command()
def restore(
    name: str = NAME,
    snapshot: str = typer.Argument(..., help="Snapshot id (or a unique prefix), or 'latest'."),
    volume: str = typer.Option("all", "--volume", help="home, workspace, system or all."),
    as_name: str | None = typer.Option(None, "--as", help="Into a new workspace instead."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Put a snapshot back. As with `dev8 restore`, the data is staged first and swapped in
    only when every volume was restored; the previous data stays until then."""
    if as_name is None and not yes:
        confirm_replace(name, f"Replace the data of {name} with snapshot {snapshot}?")
    started = time.monotonic()
    with transfer() as progress:
        workspace, roles = snapshots().restore(name, snapshot, volume, as_name, progress)
    console.print(
        f"[green]✓[/] Restored {', '.join(roles)} of snapshot {snapshot} into {workspace.name} "
        f"{took(started)}"
    )
    if as_name:
        console.print(f"  Created workspace {as_name}; start it with `dev8 start {as_name}`")


@app.command()
def rm(
    name: str = NAME,
    snapshot: list[str] = typer.Argument(None, help="Snapshot ids to remove."),
    keep_last: int | None = KEEP_LAST,
    keep_daily: int | None = KEEP_DAILY,
    keep_weekly: int | None = KEEP_WEEKLY,
) -> None:
    """Remove snapshots by id, or every one a retention policy does not keep; the space
    they alone used is freed (restic prune)."""
    removed = _repository("rm").remove(name, snapshot or [], keep_last, keep_daily, keep_weekly)
    console.print(
        f"[green]✓[/] Removed {len(removed)} snapshot(s)"
        + (f": {', '.join(removed)}" if removed else "")
    )


@app.command()
def check(
    read_data: bool = typer.Option(
        False, "--read-data", help="Also read and verify every stored byte (slow)."
    ),
) -> None:
    """Verify the repository's structure and checksums (restic check)."""
    console.print(f"[green]✓[/] {_repository('check').check(read_data)}")


@app.command()
def repo(
    url: str | None = typer.Argument(
        None,
        help="A directory (absolute), s3:HOST/BUCKET/PATH or azure:CONTAINER:/PATH. Credentials "
        "come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AZURE_ACCOUNT_NAME/"
        "AZURE_ACCOUNT_KEY in the environment.",
    ),
) -> None:
    """Show or set where snapshots are stored (DEV8_SNAPSHOT_REPOSITORY overrides it)."""
    svc = _repository("repo")
    repository = svc.set_repository(url) if url else svc.repository
    console.print(f"{'Snapshots now go to' if url else 'Snapshots go to'} {repository.url}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="snapshot")
