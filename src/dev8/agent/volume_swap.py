"""Replacing a volume's contents with a restored tree, safe at every point of interruption.

Docker cannot rename volumes, so a restore cannot build a new volume and swap names. It
builds the new tree inside the volume, in a directory the workspace never uses, and swaps
top-level entries by ``rename`` (instant, same file system), with a journal that says how to
undo a half-done swap. Runs as root wherever the volume is mounted at ROOT:

- in dev8's helper containers: ``python3 -c "<this file>" ACTION ROOT [TOKEN]``;
- in the agent, at every workspace start, to roll back a swap that was interrupted.

Standard library only. Layout under ``ROOT/.dev8-restore``::

    journal.json  {"state": ..., "token": ..., "root": {mode, uid, gid, times}}
    incoming/     the restored tree (tar extracts here); its attributes become ROOT's
    previous/     the old top-level entries while they are being swapped out

States: ``staging`` (incoming/ being filled; ROOT untouched), ``moving-out`` (old entries
into previous/), ``moving-in`` (new entries from incoming/ into ROOT), ``swapped`` (the new
tree is in place, the old one kept until every volume of the restore is swapped), then
``done`` or ``rolled-back`` (only deletion left). Anything interrupted before ``done`` is
rolled back: the old tree comes back exactly, and the restore can simply be run again.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

RESTORE_DIR = ".dev8-restore"
UNDO_STATES = ("moving-out", "moving-in", "swapped")


class SwapError(Exception):
    pass


def _area(root: Path) -> Path:
    return root / RESTORE_DIR


def read_journal(root: Path) -> dict | None:
    try:
        return json.loads((_area(root) / "journal.json").read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"state": "corrupt"}


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
    outcome = recover(root, keep_staging=False)
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


def swap(root: Path, token: str) -> dict:
    """Put ``incoming/`` in place of ROOT's contents, keeping the old ones in previous/ until
    ``commit``; on any failure, roll back and raise."""
    journal = read_journal(root)
    if journal is None or journal.get("token") != token or journal.get("state") != "staging":
        raise SwapError(f"no staged restore {token} in {root}")
    area = _area(root)
    incoming, previous = area / "incoming", area / "previous"
    journal.update(state="moving-out", incoming=_attributes(incoming))
    _write_journal(root, journal)
    try:
        previous.mkdir(mode=0o700, exist_ok=True)
        for name in _entries(root, skip=RESTORE_DIR):
            os.rename(root / name, previous / name)
        _fsync_dir(root)
        journal["state"] = "moving-in"
        _write_journal(root, journal)
        moved = 0
        for name in _entries(incoming):
            os.rename(incoming / name, root / name)
            moved += 1
        _fsync_dir(root)
        journal["state"] = "swapped"
        _write_journal(root, journal)
    except BaseException:
        recover(root, keep_staging=False)
        raise
    return {"swapped": moved}


def commit(root: Path, token: str) -> dict:
    """Make a swap final and delete the old tree."""
    journal = read_journal(root)
    if journal is None or journal.get("token") != token or journal.get("state") != "swapped":
        raise SwapError(f"no swapped restore {token} in {root}")
    journal["state"] = "done"
    _write_journal(root, journal)
    _delete_area(root, journal["incoming"])
    return {"committed": True}


def roll_back(root: Path, token: str) -> dict:
    """Undo a swap that is not committed (another volume of the same restore failed)."""
    journal = read_journal(root)
    if journal is None or journal.get("token") != token:
        return {"rolled_back": False}
    return {"rolled_back": recover(root, keep_staging=False)}


def recover(root: Path, keep_staging: bool) -> str:
    """Bring ROOT back to a consistent state after an interruption; returns what was done.

    ``keep_staging`` leaves a tree that is still being extracted alone (the agent starts
    while a restore into the running workspace may be in progress)."""
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
    if state in UNDO_STATES:
        _roll_back(root, journal)
        _delete_area(root, journal.get("root"))
        return "rolled back an interrupted restore; the previous data is in place"
    if state == "corrupt" and keep_staging:
        return "an unreadable restore journal; left alone"
    final = journal.get("incoming") if state == "done" else journal.get("root")
    _delete_area(root, final)
    return f"removed a finished restore area ({state})"


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
    """Delete the restore area, then give ROOT its final attributes (deleting changes its
    times): the restored tree's top directory, or the old one after a roll-back."""
    area = _area(root)
    for name in ("previous", "incoming"):
        shutil.rmtree(area / name, ignore_errors=True)
    shutil.rmtree(area, ignore_errors=True)
    if attributes:
        _apply_attributes(root, attributes)


def install(roots: list[Path], token: str) -> dict:
    """Swap every root, then commit them all; if one swap fails, roll back the others."""
    swapped: list[Path] = []
    try:
        for root in roots:
            swap(root, token)
            swapped.append(root)
    except BaseException:
        for root in swapped:
            roll_back(root, token)
        raise
    for root in roots:
        commit(root, token)
    return {"installed": [str(root) for root in roots]}


def _each(action):
    return lambda roots, token: {str(root): action(root, token) for root in roots}


ACTIONS = {
    "prepare": _each(prepare),
    "swap": _each(swap),
    "commit": _each(commit),
    "install": install,
    "rollback": _each(roll_back),
    "abort": _each(abort),
    "recover": _each(lambda root, _token: recover(root, keep_staging=False)),
    "status": _each(lambda root, _token: read_journal(root)),
}


def main(argv: list[str]) -> int:
    """``ACTION TOKEN ROOT [ROOT...]``; prints the outcome as JSON."""
    if len(argv) < 3 or argv[0] not in ACTIONS:
        print(f"usage: volume_swap {'|'.join(ACTIONS)} TOKEN ROOT...", file=sys.stderr)
        return 2
    action, token, roots = argv[0], argv[1], [Path(root) for root in argv[2:]]
    try:
        result = ACTIONS[action](roots, token)
    except (SwapError, OSError) as exc:
        print(f"restore {action}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
