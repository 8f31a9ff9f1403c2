"""Replacing the contents of a workspace's volumes with restored trees: every volume or none,
whatever interrupts it.

Docker cannot rename volumes, so a restore cannot build a new volume and swap names. It
builds the new tree inside each volume, in a directory the workspace never uses, and swaps
top-level entries by ``rename`` (instant, same file system), with a journal per volume that
says how to finish or undo a half-done swap. Runs as root wherever the volumes are mounted:

- in dev8's helper containers: ``python3 -c "<this file>" ACTION TOKEN ROOT...``;
- in the agent, at every workspace start, to settle a swap that was interrupted.

Standard library only. Layout under ``ROOT/.dev8-restore``::

    journal.json  {"state", "token", "root": ROOT's attributes; from the swap on also
                   "volume": this volume's name, "volumes": the restore's volumes}
    incoming/     the restored tree (tar extracts here); its attributes become ROOT's
    previous/     the old top-level entries while they are being swapped out

A volume goes ``staging`` (incoming/ being filled; ROOT untouched), ``moving-out`` (old
entries into previous/), ``moving-in`` (new entries into ROOT), ``swapped`` (new tree in
place, old one kept), then ``done`` or ``rolled-back`` (only deletion left).

One commit for all volumes: the first volume of a restore, its coordinator, holds the
decision. Every volume is swapped first; then the coordinator's journal becomes
``committed`` (one atomic rename: the commit point). Recovery rolls every volume back before
that point and forward after it. The coordinator's journal outlives the others' (it lists
in ``finished`` those that are settled), so the decision is there while any volume needs it;
a volume whose coordinator is not among the roots given is left alone. So recover with
every volume of the workspace, as the agent, ``dev8 doctor --fix`` and restores do.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

RESTORE_DIR = ".dev8-restore"
SWAPPING = ("moving-out", "moving-in", "swapped")
COMMITTED = ("committed", "done")
CORRUPT = {"state": "corrupt"}
# Where workspaces and dev8's helpers mount each volume (dev8.core.naming.VOLUME_MOUNTS):
# a volume's name in a restore is its role.
MOUNTS = {"/home/dev8": "home", "/workspace": "workspace", "/var/lib/dev8": "system"}


class SwapError(Exception):
    pass


def _area(root: Path) -> Path:
    return root / RESTORE_DIR


def read_journal(root: Path) -> dict | None:
    """The journal, or None; one of an unexpected shape (a member can write it) reads as
    ``{"state": "corrupt"}``."""
    try:
        journal = json.loads((_area(root) / "journal.json").read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return dict(CORRUPT)
    return journal if _well_formed(journal) else dict(CORRUPT)


def _well_formed(journal: object) -> bool:
    if not isinstance(journal, dict):
        return False
    names = (journal.get("volumes", []), journal.get("finished", []))
    return (
        all(isinstance(journal.get(key, ""), str) for key in ("state", "token", "volume"))
        and all(isinstance(n, list) and all(isinstance(x, str) for x in n) for n in names)
        and all(isinstance(journal.get(key, {}), dict) for key in ("root", "incoming"))
    )


def _write_journal(root: Path, journal: dict) -> None:
    area = _area(root)
    temporary = area / "journal.json.tmp"
    with temporary.open("w") as handle:
        json.dump(journal, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(temporary, area / "journal.json")
    _fsync_dir(area)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _entries(directory: Path, skip: str | None = None) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name != skip)


def _attributes(path: Path) -> dict:
    info = os.lstat(path)
    return {
        "mode": info.st_mode & 0o7777,
        "uid": info.st_uid,
        "gid": info.st_gid,
        "atime_ns": info.st_atime_ns,
        "mtime_ns": info.st_mtime_ns,
    }


def _apply_attributes(path: Path, attributes: dict) -> None:
    os.chown(path, attributes["uid"], attributes["gid"])
    os.chmod(path, attributes["mode"])
    os.utime(path, ns=(attributes["atime_ns"], attributes["mtime_ns"]))


def prepare(root: Path, token: str) -> dict:
    """Clear what an earlier restore left behind and make an empty ``incoming/``."""
    outcome = recover({"": root}, keep_staging=False)[""]
    if _area(root).exists():
        raise SwapError(f"{root}: {outcome}")
    # Making the restore area changes ROOT's times; they are put back when it goes.
    attributes = _attributes(root)
    area = _area(root)
    area.mkdir(mode=0o700)
    (area / "incoming").mkdir(mode=0o700)
    _write_journal(root, {"state": "staging", "token": token, "root": attributes})
    return {"prepared": str(area / "incoming"), "recovered": outcome}


def abort(root: Path, token: str) -> dict:
    """Forget a staged tree that will not be swapped in (its extraction failed)."""
    journal = read_journal(root)
    if journal is None:
        return {"aborted": False}
    if journal.get("token") != token or journal.get("state") != "staging":
        raise SwapError(f"{root} holds another restore ({journal.get('state')}); not touched")
    _delete_area(root, journal.get("root"))
    return {"aborted": True}


def install(roots: Mapping[str, Path], token: str) -> dict:
    """Swap the staged tree into every volume, then commit them all at one point: the
    coordinator's (the first volume's) journal. A failure before it rolls every one back."""
    names = list(roots)
    try:
        for name, root in roots.items():
            _swap(root, token, name, names)
    except BaseException:
        recover(roots, keep_staging=False)
        raise
    coordinator = roots[names[0]]
    journal = read_journal(coordinator) or {}
    journal["state"] = "committed"
    _write_journal(coordinator, journal)
    recover(roots, keep_staging=False)
    return {"installed": names}


def _swap(root: Path, token: str, name: str, names: list[str]) -> None:
    """Put ``incoming/`` in place of ROOT's contents, keeping the old ones in previous/."""
    journal = read_journal(root)
    if journal is None or journal.get("token") != token or journal.get("state") != "staging":
        raise SwapError(f"no staged restore {token} in {root}")
    area = _area(root)
    incoming, previous = area / "incoming", area / "previous"
    journal.update(state="moving-out", incoming=_attributes(incoming), volume=name, volumes=names)
    _write_journal(root, journal)
    previous.mkdir(mode=0o700, exist_ok=True)
    for entry in _entries(root, skip=RESTORE_DIR):
        os.rename(root / entry, previous / entry)
    _fsync_dir(root)
    journal["state"] = "moving-in"
    _write_journal(root, journal)
    for entry in _entries(incoming):
        os.rename(incoming / entry, root / entry)
    _fsync_dir(root)
    journal["state"] = "swapped"
    _write_journal(root, journal)


def recover(roots: Mapping[str, Path], keep_staging: bool) -> dict[str, str]:
    """Bring the volumes ``roots`` (by name) to a consistent state after an interruption;
    what was done, by name.

    A restore's volumes all end with the new trees (its coordinator committed) or all with
    the old ones. ``keep_staging`` leaves a tree that is still being extracted alone (the
    agent starts while a restore into the running workspace may be in progress)."""
    journals = {name: read_journal(root) for name, root in roots.items()}
    # The others before their coordinator, whose journal holds the decision they need.
    order = sorted(roots, key=lambda name: _is_coordinator(journals[name] or {}))
    return {name: _recover(roots[name], roots, keep_staging) for name in order}


def _is_coordinator(journal: dict) -> bool:
    volumes = journal.get("volumes") or [journal.get("volume")]
    return journal.get("volume") == volumes[0]


def _recover(root: Path, roots: Mapping[str, Path], keep_staging: bool) -> str:
    journal = read_journal(root)
    if journal is None:
        if _area(root).exists() and not keep_staging:
            _delete_area(root)
            return "removed an unfinished restore area"
        return "nothing to do"
    state = journal.get("state")
    if state == "staging":
        if keep_staging:
            return "a restore is staged; left alone"
        _delete_area(root, journal.get("root"))
        return "removed an unfinished restore"
    if state == "corrupt":
        if keep_staging:
            return "an unreadable restore journal; left alone"
        _delete_area(root)
        return "removed a restore area with an unreadable journal"
    if _is_coordinator(journal):
        return _recover_coordinator(root, journal, roots)
    return _recover_member(root, journal, roots)


def _recover_coordinator(root: Path, journal: dict, roots: Mapping[str, Path]) -> str:
    """Roll back unless committed. The journal, the decision, stays until every other
    volume of the restore is through."""
    if journal["state"] in SWAPPING:
        _roll_back(root, journal)
    committed = journal["state"] in COMMITTED
    outcome = "the restored data is in place" if committed else "the previous data is in place"
    waiting = [
        name for name in journal.get("volumes", [])[1:] if not _through(name, journal, roots)
    ]
    if waiting:
        return f"{outcome}; waiting for the {', '.join(waiting)} volume to be recovered"
    _delete_area(root, journal.get("incoming") if committed else journal.get("root"))
    return f"{'finished' if committed else 'rolled back'} an interrupted restore; {outcome}"


def _through(name: str, coordinator: dict, roots: Mapping[str, Path]) -> bool:
    """Whether the volume ``name`` no longer needs the decision: it said so, or it is given
    and holds no swap of this restore (none, another restore's, or one never swapped)."""
    if name in coordinator.get("finished", []):
        return True
    if name not in roots:
        return False
    journal = read_journal(roots[name]) or {}
    return journal.get("token") != coordinator["token"] or journal.get("state") == "staging"


def _recover_member(root: Path, journal: dict, roots: Mapping[str, Path]) -> str:
    """Roll forward if the coordinator committed, else back; tell it; delete the area."""
    coordinator = _locate(roots, journal["token"], journal["volumes"][0])
    state = journal["state"]
    if state in SWAPPING:
        if coordinator is None:
            name = journal["volumes"][0]
            return f"left alone: the restore's decision is in the {name} volume, not given"
        committed = (read_journal(coordinator) or {}).get("state") in COMMITTED
        if committed and state != "swapped":
            raise SwapError(f"{root}: the restore was committed while this volume was {state}")
        if committed:
            journal["state"] = "done"
            _write_journal(root, journal)
        else:
            _roll_back(root, journal)
    if coordinator is not None:
        _mark_through(coordinator, journal["volume"])
    if journal["state"] == "done":
        _delete_area(root, journal.get("incoming"))
        return "finished an interrupted restore; the restored data is in place"
    _delete_area(root, journal.get("root"))
    return "rolled back an interrupted restore; the previous data is in place"


def _locate(roots: Mapping[str, Path], token: str, volume: str) -> Path | None:
    """The root among ``roots`` that holds the journal of ``volume`` in restore ``token``."""
    for root in roots.values():
        journal = read_journal(root) or {}
        if journal.get("token") == token and journal.get("volume") == volume:
            return root
    return None


def _mark_through(coordinator: Path, volume: str) -> None:
    journal = read_journal(coordinator) or {}
    finished = journal.setdefault("finished", [])
    if volume not in finished:
        finished.append(volume)
        _write_journal(coordinator, journal)


def _roll_back(root: Path, journal: dict) -> None:
    area = _area(root)
    incoming, previous = area / "incoming", area / "previous"
    if journal["state"] in ("moving-in", "swapped"):
        # What ROOT holds now came from incoming/ (every old entry was moved out first).
        incoming.mkdir(mode=0o700, exist_ok=True)
        for name in _entries(root, skip=RESTORE_DIR):
            os.rename(root / name, incoming / name)
    if previous.is_dir():
        for name in _entries(previous):
            os.rename(previous / name, root / name)
    _fsync_dir(root)
    journal["state"] = "rolled-back"
    _write_journal(root, journal)


def _delete_area(root: Path, attributes: dict | None = None) -> None:
    """Delete the restore area, its journal last, then give ROOT its final attributes
    (deleting changes its times): the restored tree's top directory, or the old one."""
    area = _area(root)
    for name in ("previous", "incoming"):
        shutil.rmtree(area / name, ignore_errors=True)
    shutil.rmtree(area, ignore_errors=True)
    if attributes:
        _apply_attributes(root, attributes)


def ready(roots: Mapping[str, Path], token: str) -> dict:
    """Settle what earlier restores left (give every volume of the workspace), and say how
    many bytes each volume's file system has free for staging."""
    outcomes = recover(roots, keep_staging=False)
    return {
        name: {"recovered": outcomes[name], "free": _free(root)} for name, root in roots.items()
    }


def _free(root: Path) -> int:
    found = os.statvfs(root)
    return found.f_bavail * found.f_frsize


def _each(action):
    return lambda roots, token: {name: action(root, token) for name, root in roots.items()}


ACTIONS = {
    "prepare": _each(prepare),
    "install": install,
    "abort": _each(abort),
    "ready": ready,
    "recover": lambda roots, _token: recover(roots, keep_staging=False),
    "status": _each(lambda root, _token: read_journal(root)),
}


def named_roots(arguments: Sequence[str]) -> dict[str, Path]:
    """Volumes by name from ``NAME=PATH`` or a path where workspaces mount one
    (``/home/dev8``: home); any other path names itself."""
    roots = {}
    for argument in arguments:
        name, named, path = argument.partition("=")
        if not named:
            name, path = MOUNTS.get(argument.rstrip("/"), argument), argument
        roots[name] = Path(path)
    return roots


def main(argv: list[str]) -> int:
    """``ACTION TOKEN ROOT [ROOT...]``; prints the outcome as JSON, by root."""
    if len(argv) < 3 or argv[0] not in ACTIONS:
        print(f"usage: volume_swap {'|'.join(ACTIONS)} TOKEN ROOT...", file=sys.stderr)
        return 2
    action, token, roots = argv[0], argv[1], named_roots(argv[2:])
    try:
        outcome = ACTIONS[action](roots, token)
    except (SwapError, OSError) as exc:
        print(f"restore {action}: {exc}", file=sys.stderr)
        return 1
    paths = {name: str(root) for name, root in roots.items()}
    print(json.dumps({paths.get(key, key): value for key, value in outcome.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
