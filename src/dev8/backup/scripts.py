"""The programs helper containers run, as argv lists. Pure: tested without an engine.

Helpers run the image's own tools (GNU tar, zstd, pigz, find, du) as root, with the volume
mounted where the job needs it and archives mounted from the host. They talk back through
stderr lines that start with ``dev8-`` (``parse_line`` reads them); anything else on stderr
is the tools' own messages, kept for error reports.

A helper that writes into a workspace's volume does so while the workspace is stopped, into
a staging area it has just made: nothing the member planted is followed (``_STAGING``).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from importlib import resources
from typing import Any

from dev8.backup.manifest import NAME_KEPT, SKIPPED_KEPT
from dev8.core.naming import RESTORE_DIR

SOURCE, TARGET, ARCHIVE, SCRATCH = "/source", "/target", "/archive", "/scratch"
# A snapshot restore's scratch directory (dev8's own, never a volume) holds the fetched
# volumes here, at the paths the workspace sees them: FETCHED/home/dev8...
FETCHED = f"{SCRATCH}/tree"
INCOMING = f"{TARGET}/{RESTORE_DIR}/incoming"
CHECKPOINT_RECORDS = 1000  # tar reports progress every 1000 records of 10 KiB
COMPRESSORS = {"zstd": "zstd -T0 -3 -q -c", "gzip": "pigz -c"}
DECOMPRESSORS = {"zstd": "zstd -d -q -c", "gzip": "pigz -d -c", "none": "cat"}
# GNU tar in POSIX format keeps nanosecond times, long and non-ASCII names and big ids;
# --sparse keeps holes; atime/ctime are left out so the same tree makes the same archive.
TAR_CREATE = (
    "tar --create --file=- --format=posix --pax-option=delete=atime,delete=ctime "
    "--sparse --numeric-owner --no-recursion --null --files-from=/tmp/list "
    "--ignore-failed-read --warning=no-file-changed --warning=no-file-removed"
)
TAR_EXTRACT = (
    "tar --extract --file=- --numeric-owner --same-owner --preserve-permissions "
    "--delay-directory-restore"
)
PROGRESS = f"--checkpoint={CHECKPOINT_RECORDS} --checkpoint-action='echo=dev8-progress %T'"
_PROGRESS_LINE = re.compile(r"dev8-progress [RW]: (\d+)")


# Small programs for the helper's python3 (NUL-separated names in, JSON out). The skipped
# entries are counted and the first few named, on one bounded line: a volume may hold
# millions of sockets, and their names are the member's.
_SKIPPED_PY = f"""import json
count, names, rest = 0, [], b""
with open("/tmp/skipped", "rb") as found:
    while chunk := found.read(1 << 16):
        *done, rest = (rest + chunk).split(b"\\0")
        count += len(done)
        for name in done[: {SKIPPED_KEPT} - len(names)]:
            names.append(name[:{NAME_KEPT}].decode(errors="replace"))
print("dev8-skipped " + json.dumps({{"count": count, "paths": names}}))
"""
_OWNERS_PY = """import json, sys
found = sys.stdin.buffer.read().split(b"\\0")[:-1]
examples = [f.decode(errors="replace") for f in found[: int(sys.argv[1])]]
print(json.dumps({"count": len(found), "examples": examples}))
"""


# Makes the volume's staging area for restore "$2": the member can leave anything at
# .dev8-restore while the workspace runs; a symbolic link (or any non-directory) there is
# removed, never followed, and volume_swap's prepare makes the area afresh with mkdir.
_STAGING = f"""area={TARGET}/{RESTORE_DIR}
if [ -L "$area" ] || {{ [ -e "$area" ] && [ ! -d "$area" ]; }}; then rm -f -- "$area" || exit 1; fi
python3 -c "$DEV8_SWAP_PY" prepare "$2" {TARGET} >&2 || exit 1
"""


def _bash(script: str, *args: str) -> list[str]:
    return ["bash", "-c", script, "dev8-helper", *args]


def swap_program() -> str:
    """The source of ``dev8.agent.volume_swap``, run in helpers with ``python3 -c``."""
    return resources.files("dev8.agent").joinpath("volume_swap.py").read_text()


def backup_argv(compression: str) -> list[str]:
    """Archive the volume at /source into the file mounted at /archive.

    FIFOs, sockets and device nodes are listed as skipped instead of archived (a restore
    refuses them), and so is an unfinished restore's staging area.
    """
    script = f"""set -u -o pipefail
cd {SOURCE}
find . -xdev -path ./{RESTORE_DIR} -prune -o \\
    \\( -type p -o -type s -o -type b -o -type c \\) -fprint0 /tmp/skipped -o \\
    -fprintf /tmp/stat '%y %s\\n' -print0 > /tmp/list || exit 1
awk '{{n++}} $1=="f"{{f++; b+=$2}}
     END {{printf "dev8-scan entries=%d files=%d bytes=%.0f\\n", n, f, b}}' /tmp/stat >&2
python3 -c {shlex.quote(_SKIPPED_PY)} >&2
{TAR_CREATE} {PROGRESS} | {COMPRESSORS[compression]} > {ARCHIVE}
codes=("${{PIPESTATUS[@]}}")
echo "dev8-exit tar=${{codes[0]}} compress=${{codes[1]}}" >&2
[ "${{codes[0]}}" -le 1 ] && [ "${{codes[1]}}" -eq 0 ]
"""
    return _bash(script)


def extract_argv(compression: str, data_size: int, token: str) -> list[str]:
    """Extract the first ``data_size`` bytes of /archive into the volume's staging area,
    hashing exactly the bytes extracted (the host compares them with what it checked)."""
    script = f"""set -u -o pipefail
{_STAGING}mkfifo /tmp/hash
sha256sum < /tmp/hash > /tmp/sum &
head -c "$1" {ARCHIVE} | tee /tmp/hash | {DECOMPRESSORS[compression]} \\
    | {TAR_EXTRACT} {PROGRESS} -C {INCOMING}
codes=("${{PIPESTATUS[@]}}")
wait
entries=$(find {INCOMING} -printf x | wc -c)
echo "dev8-result sha256=$(cut -d' ' -f1 /tmp/sum) entries=$entries" >&2
echo "dev8-exit read=${{codes[0]}} decompress=${{codes[2]}} tar=${{codes[3]}}" >&2
[ "${{codes[0]}}" -eq 0 ] && [ "${{codes[2]}}" -eq 0 ] && [ "${{codes[3]}}" -eq 0 ]
"""
    return _bash(script, str(data_size), token)


def place_argv(fetched: str, token: str) -> list[str]:
    """Copy the directory ``fetched`` (a snapshot's volume path, in a restore's scratch
    directory mounted read-only) into the volume's staging area, as it is: owners, modes,
    times, links, hard links, extended attributes."""
    script = f"""set -u -o pipefail
{_STAGING}[ -d "$1" ] || {{ echo "the snapshot has no ${{1#{FETCHED}}}" >&2; exit 1; }}
cp -a --no-target-directory -- "$1" {INCOMING} || exit 1
echo "dev8-result entries=$(find {INCOMING} -printf x | wc -c)" >&2
"""
    return _bash(script, fetched, token)


def copy_volume_argv(source: str, target: str) -> list[str]:
    """Copy the tree at ``source`` (mounted read-only) into the empty ``target`` as it is:
    owners, modes, times, links (never followed), hard links, extended attributes."""
    return ["cp", "-a", "--no-target-directory", "--", source, target]


# The regular files' bytes and the entries under each path argument, as JSON by path; links
# are counted, never followed.
_MEASURE = r"""
import json, os, stat, sys
found = {}
for root in sys.argv[1:]:
    size = entries = 0
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            info = os.lstat(os.path.join(directory, name))
            entries += 1
            if stat.S_ISREG(info.st_mode):
                size += info.st_size
    found[root] = {"bytes": size, "entries": entries}
print(json.dumps(found))
"""


def measure_argv(paths: list[str]) -> list[str]:
    """What restoring each of ``paths`` (fetched trees, mounted read-only) writes."""
    return ["python3", "-c", _MEASURE, *paths]


def clear_scratch_argv(names: list[str]) -> list[str]:
    """Delete restores' scratch directories (``names`` under /scratch): what they hold is
    root's and the member's, which dev8's own user may not be able to remove."""
    paths = [f"{SCRATCH}/{name}" for name in names]
    return ["rm", "-rf", "--one-file-system", "--", *paths]


def swap_argv(action: str, token: str, roots: list[str]) -> list[str]:
    """A ``volume_swap`` action (install, abort, recover, status...) on volumes mounted at
    ``roots``."""
    return ["python3", "-c", swap_program(), action, token, *roots]


def du_argv(roots: list[str], depth: int) -> list[str]:
    """Bytes used per directory, down to ``depth``, NUL-separated ``SIZE<TAB>PATH`` records."""
    quoted = " ".join(shlex.quote(root) for root in roots)
    return _bash(f"du -x -B1 --max-depth={int(depth)} -0 {quoted} 2>/dev/null; true")


@dataclass(frozen=True)
class Cache:
    name: str
    paths: tuple[str, ...]  # directories whose contents are removed
    measured: tuple[str, ...] = ()  # what to measure before and after (default: paths)


CACHES = (
    Cache("npm", ("/home/dev8/.npm/_cacache",)),
    Cache("pip", ("/home/dev8/.cache/pip",)),
    Cache(
        "cargo",
        (
            "/home/dev8/.cargo/registry/cache",
            "/home/dev8/.cargo/registry/src",
            "/home/dev8/.cargo/git/checkouts",
            "/home/dev8/.cargo/git/db",
        ),
    ),
    # apt's download cache on the system volume. The package pool next to it holds hard
    # links to the same files and is what brings packages back after a rebuild: kept.
    Cache("apt", ("/var/lib/dev8/packages/archives",), ("/var/lib/dev8/packages",)),
)


def clean_argv() -> list[str]:
    """Empty the package-manager caches; one ``dev8-clean NAME BEFORE AFTER`` line each.
    du counts a file with several links once, so a file still linked elsewhere (the apt
    pool) is not reported as freed."""
    lines = ["set -u", 'measure() { du -scxB1 "$@" 2>/dev/null | tail -n 1 | cut -f1; }']
    for cache in CACHES:
        paths = " ".join(shlex.quote(path) for path in cache.paths)
        measured = " ".join(shlex.quote(path) for path in cache.measured or cache.paths)
        removal = (
            """find "$p" -maxdepth 1 -type f -name '*.deb' -delete; rm -rf "$p"/partial/*"""
            if cache.name == "apt"
            else """find "$p" -mindepth 1 -maxdepth 1 -exec rm -rf {} +"""
        )
        lines += [
            f"before=$(measure {measured})",
            f'for p in {paths}; do if [ -d "$p" ]; then {removal}; fi; done',
            f"after=$(measure {measured})",
            f'echo "dev8-clean {cache.name} ${{before:-0}} ${{after:-0}}"',
        ]
    return _bash("\n".join(lines) + "\n")


def ownership_argv(roots: list[str], uid: int, examples: int = 10) -> list[str]:
    """Count entries not owned by ``uid`` under ``roots`` and print the first few."""
    quoted = " ".join(shlex.quote(root) for root in roots)
    script = f"""set -u -o pipefail
find {quoted} -xdev -path '*/{RESTORE_DIR}' -prune -o ! -uid {uid} -printf '%p (UID %U)\\0' \\
    | python3 -c {shlex.quote(_OWNERS_PY)} {int(examples)}
"""
    return _bash(script)


def chown_argv(roots: list[str], uid: int, gid: int) -> list[str]:
    """Give everything under ``roots`` to the user; symbolic links are changed, not followed."""
    return ["chown", "-R", "-h", f"{uid}:{gid}", *roots]


def parse_line(line: str) -> tuple[str, dict] | None:
    """A ``dev8-...`` line from a helper as (kind, fields); None for anything else."""
    if line.startswith("tar: dev8-progress"):
        found = _PROGRESS_LINE.search(line)
        return ("progress", {"bytes": int(found.group(1))}) if found else None
    if not line.startswith("dev8-"):
        return None
    kind, _, rest = line.partition(" ")
    kind = kind.removeprefix("dev8-")
    if kind == "skipped":
        return _skipped(rest)
    fields: dict[str, Any] = dict(pair.split("=", 1) for pair in rest.split() if "=" in pair)
    if kind == "clean":
        name, before, after = [*rest.split(), "0", "0", "0"][:3]
        if not (before.isdigit() and after.isdigit()):
            return None
        fields = {"name": name, "before": int(before), "after": int(after)}
    return kind, fields


def _skipped(text: str) -> tuple[str, dict] | None:
    """``{"count": N, "paths": [...]}``, the first ``SKIPPED_KEPT`` names; None if garbled."""
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(found, dict):
        return None
    count, paths = found.get("count"), found.get("paths")
    if type(count) is not int or not isinstance(paths, list):
        return None
    names = [path[:NAME_KEPT] for path in paths[:SKIPPED_KEPT] if isinstance(path, str)]
    return "skipped", {"count": max(count, len(names)), "paths": names}
