"""`dev8 backup`, `dev8 restore` and `dev8 verify`: volume archives."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from dev8.cli.context import archive_checker, backups, server_backups, workspaces
from dev8.cli.output import (
    confirm_replace,
    console,
    err_console,
    plain_table,
    print_json,
    took,
)
from dev8.cli.progress import transfer
from dev8.core.errors import NotFound
from dev8.core.quotas import format_bytes

if TYPE_CHECKING:
    from dev8.service.backups import BackupResult

NAME = typer.Argument(..., help="Workspace name.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


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
    from dev8.cli.backends import KeepsBackups

    started = time.monotonic()
    backend = backups()
    with transfer() as progress:
        results = backend.backup(
            name,
            volume=volume,
            output=output,
            archive_format=archive_format,
            stop=stop,
            progress=progress,
        )
    if as_json:
        print_json(
            [
                {"path": str(r.path), "sha256": r.file_sha256, "manifest": asdict(r.manifest)}
                for r in results
            ]
        )
        return
    _print_archives(results)
    console.print(f"[green]✓[/] Backed up {name} ({len(results)} volume(s)) {took(started)}")
    kept_as = backend.kept_as if isinstance(backend, KeepsBackups) else None
    if kept_as:
        console.print(f"  The server keeps it as {kept_as}: `dev8 restore {name} --from {kept_as}`")


def _print_archives(results: list[BackupResult]) -> None:
    table = plain_table("VOLUME", "ARCHIVE", "SIZE", "FILES", "DATA", "SHA-256")
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
    target = as_name or name
    if as_name is None and not yes and _exists(name):
        confirm_replace(name, f"Replace the data of {name} with the archive's?")
    started = time.monotonic()
    with transfer() as progress:
        result = backups().restore(name, sources, volume, as_name, progress)
    what = ", ".join(
        f"{role} ({result.entries[role]} entries)" if role in result.entries else role
        for role in result.roles
    )
    source = ", ".join(str(path) for path in sources)
    console.print(f"[green]✓[/] Restored {what} from backup {source} into {target} {took(started)}")
    if result.created:
        console.print(f"  Created workspace {target}; start it with `dev8 start {target}`")
    elif result.restarted:
        console.print(f"  {target} was restarted on the restored data")


def _exists(name: str) -> bool:
    try:
        workspaces().find(name)
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
        found, checked = archive_checker().verify(archive, progress)
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
    remote = server_backups(
        "`dev8 backups`", "in local mode the archives are the files `dev8 backup` wrote"
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
    table = plain_table("ID", "CREATED", "VOLUMES", "SIZE")
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
