"""Where the agent keeps the workspace's system state: SSH host keys, package records and
their cache, the dotfiles marker. Runs as root, before anything reads that state.

``dev8 up`` gives the state a volume of its own at /var/lib/dev8. The seed's two-volume
setup (``docker run -v user-home:/home/dev8 -v workspace-data:/workspace``, its compose file)
has none: the image's directory would go with the container at the next image update, and
with it the record of what ``sudo apt install`` added and the host identity SSH clients
know. There the state lives on the home volume instead, in a root-owned directory out of the
user's way, and /var/lib/dev8 becomes a link to it. When the workspace later gets a volume of
its own for the state, the state is copied there once and only then removed from the home.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger("dev8.agent")
HOME_STATE = ".dev8-system"  # in the home volume, when the state has no volume of its own


def place_state(state_dir: Path, home: Path, home_synced: bool = False) -> list[str]:
    """Make ``state_dir`` persistent wherever the container's volumes allow (a home synced to
    a share counts as one: ``dev8.agent.sync``); returns warnings worth showing to the user."""
    in_home = home / HOME_STATE
    if os.path.ismount(state_dir):
        if in_home.is_dir() and not in_home.is_symlink():
            _move_into_volume(in_home, state_dir)
        return []
    if not (home_synced or os.path.ismount(home)):
        return [
            f"neither {state_dir} nor {home} is a volume: the SSH host keys and package "
            "records will not survive a rebuild"
        ]
    _keep_in_home(state_dir, in_home)
    return []


def _keep_in_home(state_dir: Path, in_home: Path) -> None:
    if not in_home.is_dir() or in_home.is_symlink():
        _remove(in_home)
        in_home.mkdir(mode=0o755)
        log.info("%s is not a volume: keeping its state in %s", state_dir, in_home)
    os.chown(in_home, 0, 0)
    in_home.chmod(0o755)
    if state_dir.is_symlink() and os.readlink(state_dir) == str(in_home):
        return  # this container's earlier start did it
    if state_dir.is_dir() and not state_dir.is_symlink():
        # What the image put there (its empty package cache) completes the kept state
        # without overwriting any of it.
        _copy(state_dir, in_home, overwrite=False)
    _remove(state_dir)
    state_dir.symlink_to(in_home)


def _move_into_volume(in_home: Path, volume: Path) -> None:
    """The kept state wins over the new volume's (which holds at most the image's empty
    cache); a start interrupted before the removal copies it again."""
    log.info("moving the state kept in %s to its volume %s", in_home, volume)
    _copy(in_home, volume, overwrite=True)
    shutil.rmtree(in_home)


def _copy(source: Path, target: Path, *, overwrite: bool) -> None:
    # cp -a keeps the hard links between the package pool and apt's cache, owners and modes.
    subprocess.run(
        ["cp", "-a" if overwrite else "-an", f"{source}/.", f"{target}/"],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
