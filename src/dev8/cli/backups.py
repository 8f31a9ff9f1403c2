"""`dev8 backup`, `dev8 restore` and `dev8 verify`: volume archives."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from dev8.cli.output import confirm_replace, console, err_console, print_json
from dev8.cli.progress import transfer
from dev8.core.errors import InvalidInput
from dev8.core.quotas import format_bytes

if TYPE_CHECKING:
    from dev8.cli.remote_backups import RemoteBackups
    from dev8.service.backups import BackupService

NAME = typer.Argument(..., help="Workspace name.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def backups() -> BackupService:
    from dev8.cli.context import service
    from dev8.service.backups import BackupService

    return BackupService(service())


def remote_backups() -> RemoteBackups | None:
    """In server mode, the server's backups; None in local mode."""
    from dev8.cli.context import in_server_mode, service

    if not in_server_mode():
        return None
    from dev8.cli.remote_backups import RemoteBackups

    return RemoteBackups(service())


def backup(
    name: str = NAME,
    volume: str = typer.Option(
        "all", "--volume", help="home, workspace, system, or all (one archive per volume)."
    ),
    output: str | None = typer.Option(
        None,
        "--output",
        "-o",
        help="A directory for the archives (default: the current one), or a file name when "
        "one volume is backed up.",
    ),
    archive_format: str = typer.Option(
        "tar.zst",
        "--format",
        help="tar.zst (multi-threaded zstd, the default) or tar.gz (a plain gzip tar that "
        "`tar xzf` restores).",
    ),
    stop: bool = typer.Option(
        False, "--stop", help="Stop a running workspace for the backup and start it again."
    ),
    as_json: bool = JSON,
) -> None:
    """Back up a workspace's volumes into archives with a manifest (workspace, image,
    volume, time, file count, bytes, SHA-256).

    Each volume streams through a short-lived helper container that mounts it read-only.
    A backup of a running workspace is crash-consistent; `--stop` makes it consistent.
    In server mode the server makes the backup and keeps it (`dev8 backups NAME`); its
    archives are downloaded here too.
    """
    started = time.monotonic()
    remote, kept_as = remote_backups(), None
    with transfer() as progress:
        if remote is not None:
            kept_as, results = remote.backup(name, volume, output, archive_format, stop, progress)
        else:
            results = backups().backup(name, volume, output, archive_format, stop, progress)
    if as_json:
        print_json(
            [
                {"path": str(r.path), "sha256": r.file_sha256, "manifest": asdict(r.manifest)}
                for r in results
            ]
        )
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("VOLUME", "ARCHIVE", "SIZE", "FILES", "DATA", "SHA-256"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(
            r.role,
            str(r.path),
            format_bytes(r.path.stat().st_size),
            str(r.manifest.files),
            format_bytes(r.manifest.bytes),
            r.file_sha256[:16],
        )
    console.print(table)
    for r in results:
        for warning in r.warnings:
            err_console.print(f"[yellow]warning[/] {r.role}: {warning}", highlight=False)
    console.print(
        f"[green]✓[/] Backed up {name} ({len(results)} volume(s)) "
        f"[dim]({time.monotonic() - started:.1f} s)[/]"
    )
    if kept_as:
        console.print(f"  The server keeps it as {kept_as}: `dev8 restore {name} --from {kept_as}`")


def restore(
    name: str = typer.Argument(
        ..., help="Workspace to restore (created if it does not exist, or the model for --as)."
    ),
    sources: list[Path] = typer.Option(
        ...,
        "--from",
        help="Archive to restore (repeat for several volumes); in server mode, the id of a "
        "backup the server keeps.",
    ),
    volume: str | None = typer.Option(
        None,
        "--volume",
        help="The volume an archive without a dev8 manifest holds (home, workspace or "
        "system), or the one volume to take from several archives.",
    ),
    as_name: str | None = typer.Option(
        None, "--as", help="Restore into a new workspace with this name instead."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Restore volumes from archives made by `dev8 backup` or by plain `tar czf`.

    Every archive is checked to the end before anything is written (paths, links, device
    nodes, checksum). The data goes into a staging area first and replaces the volume's
    contents only after it was extracted completely; an interrupted restore leaves the
    previous data in place. A running workspace is stopped only for that final swap.
    """
    from dev8.cli.context import service

    target = as_name or name
    in_place = as_name is None and _exists(service(), name)
    if in_place and not yes:
        confirm_replace(name, f"Replace the data of {name} with the archive's?")
    started = time.monotonic()
    remote = remote_backups()
    if remote is not None:
        if as_name:
            raise InvalidInput("--as works in local mode only")
        with transfer() as progress:
            roles = remote.restore(name, sources, volume, progress)
        console.print(
            f"[green]✓[/] Restored {', '.join(roles)} from backup {sources[0]} into {name} "
            f"[dim]({time.monotonic() - started:.1f} s)[/]"
        )
        return
    with transfer() as progress:
        result = backups().restore(name, sources, volume, as_name, progress)
    what = ", ".join(f"{role} ({result.entries[role]} entries)" for role in result.roles)
    console.print(
        f"[green]✓[/] Restored {what} into {target} [dim]({time.monotonic() - started:.1f} s)[/]"
    )
    if result.created:
        console.print(f"  Created workspace {target}; start it with `dev8 start {target}`")
    elif result.restarted:
        console.print(f"  {target} was restarted on the restored data")


def _exists(svc, name: str) -> bool:
    from dev8.core.errors import NotFound

    try:
        svc.find(name)
    except NotFound:
        return False
    return True


def verify(
    archive: Path = typer.Argument(..., help="An archive made by `dev8 backup` or `tar czf`."),
    as_json: bool = JSON,
) -> None:
    """Check an archive as a restore would, without writing anything: it reads to the end,
    every member is safe to extract, and the checksum matches its manifest."""
    with transfer() as progress:
        found, checked = backups().verify(archive, progress)
    manifest = asdict(found.manifest) if found.manifest else None
    if as_json:
        print_json(
            {
                "path": str(archive),
                "compression": found.compression,
                "manifest": manifest,
                "check": asdict(checked),
            }
        )
        return
    if found.manifest is None:
        console.print(f"{archive}: {found.compression} tar without a dev8 manifest")
    else:
        m = found.manifest
        console.print(
            f"{archive}: the {m.volume} volume of {m.workspace_name} ({m.workspace_id}), "
            f"{m.created_at}, image {m.image}"
            + (" [yellow](crash-consistent)[/]" if m.crash_consistent else "")
        )
    console.print(
        f"[green]✓[/] {checked.entries} entries, {checked.files} files, "
        f"{format_bytes(checked.bytes)}; sha256 {checked.sha256[:16]}... "
        + ("matches the manifest" if found.manifest else "(no manifest to compare)")
    )


def backups_command(
    name: str = NAME,
    remove: list[str] = typer.Option([], "--rm", help="Delete this kept backup (repeatable)."),
    as_json: bool = JSON,
) -> None:
    """Server mode: the backups the server keeps of a workspace (made by `dev8 backup`), to
    restore with `dev8 restore NAME --from ID`; --rm ID deletes one."""
    remote = remote_backups()
    if remote is None:
        raise InvalidInput(
            "`dev8 backups` lists what a dev8 server keeps; in local mode the archives are "
            "the files `dev8 backup` wrote"
        )
    for backup_id in remove:
        remote.delete(name, backup_id)
        console.print(f"[green]✓[/] Deleted backup {backup_id} of {name}")
    if remove:
        return
    kept = remote.list(name)
    if as_json:
        print_json(kept)
        return
    if not kept:
        console.print(f"The server keeps no backups of {name} yet: `dev8 backup {name}`.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "CREATED", "VOLUMES", "SIZE"):
        table.add_column(column)
    for backup in kept:
        table.add_row(
            backup["id"],
            backup["created_at"][:19].replace("T", " "),
            ", ".join(str(a["volume"]) for a in backup["archives"]),
            format_bytes(sum(a["size_bytes"] for a in backup["archives"])),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command("backups")(backups_command)
    app.command()(restore)
    app.command()(verify)
