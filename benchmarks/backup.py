"""Backup, restore and snapshots of a generated workspace, against the seed's
`docker run ... tar czf` pipeline on the same data in the same run.

The workspace volume gets a mix like a real one: source code and a dependency tree of many
small text files, logs, and incompressible binaries (images, packed git objects). Every
command runs as a user runs it (a `dev8` or `docker` process), on a warm page cache.

Goals: `dev8 backup` at least 2x the seed pipeline's throughput with an archive no more
than 10% larger; a second snapshot with no changes in under 10% of the full one.

The unchanged snapshot is measured twice in the same run: as dev8 makes it (the volumes'
fingerprint matches the last snapshot's, restic does not run), and with dev8's record of the
last snapshot removed first, so that restic compares every file as it did before
(``dev8.backup.unchanged``). A snapshot after one changed file shows restic's incremental
cost. `--snapshots-only` leaves out the archive backups and restores.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dev8.core.images import helper_image
from dev8.core.naming import LABEL_OWNER
from dev8.providers.docker.client import connect
from dev8.providers.docker.volumes import remove_volume

OWNER = f"bench-{secrets.token_hex(3)}"
GIB = 1024**3

# Runs in the helper image: writes about SIZE_MIB MiB under /v, owned by UID 1000.
GENERATE = r"""
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2]) * 1048576
rng = random.Random(8)
words = ["def", "return", "import", "class", "self", "const", "function", "if", "else",
         "for", "while", "await", "async", "None", "true", "false", "value", "result",
         "config", "request", "response", "error", "data", "items", "index", "user", "name",
         "path", "file", "buffer", "length", "count", "string", "number", "object"]
words += ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(3, 12)))
          for _ in range(3000)]
def text(size):
    out, n = [], 0
    while n < size:
        line = "    " * rng.randint(0, 3) + " ".join(rng.choices(words, k=rng.randint(2, 12)))
        line += rng.choice([":", "(", ")", ";", " {", " }", ",", ""]) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out)[:size].encode()
chunks = [text(1 << 20) for _ in range(8)]
def write(path, size, binary=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        while size > 0:
            step = min(size, 1 << 20)
            block = os.urandom(step) if binary else rng.choice(chunks)[:step]
            handle.write(block)
            size -= len(block)
shares = {"src": 0.30, "node_modules": 0.20, "logs": 0.15, "assets": 0.35}
budget = {k: int(total * v) for k, v in shares.items()}
i = 0
while budget["src"] > 0:
    size = rng.randint(2000, 60000)
    write(f"{root}/project/src/pkg{i % 97}/module_{i}.py", size)
    budget["src"] -= size; i += 1
while budget["node_modules"] > 0:
    size = rng.randint(300, 12000)
    write(f"{root}/project/node_modules/dep{i % 400}/lib/f{i}.js", size)
    budget["node_modules"] -= size; i += 1
for n in range(4):
    write(f"{root}/project/logs/build-{n}.log", budget["logs"] // 4)
while budget["assets"] > 0:
    size = rng.randint(200000, 8000000)
    write(f"{root}/project/assets/blob{i}.bin", size, binary=True)
    budget["assets"] -= size; i += 1
for directory, dirs, files in os.walk(root):
    for name in dirs + files:
        os.lchown(os.path.join(directory, name), 1000, 1000)
os.chown(root, 1000, 1000)
"""


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median(runs: int, action: Callable[[], object], before: Callable[[], object] = lambda: None):
    samples = []
    for _ in range(runs):
        before()
        samples.append(timed(action))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1536, help="workspace data to generate")
    parser.add_argument("--runs", type=int, default=1, help="runs of each timing (median)")
    parser.add_argument("--snapshots-only", action="store_true", help="skip archives")
    args = parser.parse_args()
    client = connect()
    work = Path(tempfile.mkdtemp(prefix="dev8-bench-"))
    out = work / "out"
    out.mkdir()
    env = {**os.environ, "DEV8_HOME": str(work / "data"), "LOGNAME": OWNER}
    image = helper_image()
    label = {"label": f"{LABEL_OWNER}={OWNER}"}

    def dev8(*argv: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "dev8", *argv],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def docker(*argv: str) -> None:
        subprocess.run(["docker", *argv], check=True, capture_output=True)

    try:
        dev8("create", "bench")
        workspace_id = json.loads(dev8("status", "bench", "--json"))["id"]
        volume = f"dev8-{workspace_id}-workspace"
        print(f"generating {args.size_mib} MiB in {volume} ...", flush=True)
        client.containers.run(
            image,
            ["python3", "-c", GENERATE, "/v", str(args.size_mib)],
            volumes={volume: {"bind": "/v", "mode": "rw"}},
            labels={LABEL_OWNER: OWNER},
            network_mode="none",
            remove=True,
        )
        data_bytes = int(
            client.containers.run(
                image, ["du", "-sb", "/v"], volumes={volume: {"bind": "/v", "mode": "ro"}},
                labels={LABEL_OWNER: OWNER}, remove=True,
            ).split()[0]
        )  # fmt: skip
        results: dict[str, float] = {}
        sizes: dict[str, int] = {}
        if not args.snapshots_only:
            measure_archives(args.runs, volume, out, image, client, dev8, docker, results, sizes)
        measure_snapshots(args.runs, work / "data", volume, image, docker, dev8, results)
    finally:
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True)
        for volume_object in client.volumes.list(filters=label):
            remove_volume(volume_object)  # its loop device and image too
        for network in client.networks.list(filters=label):  # each restored copy's own
            network.remove()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    report(results, sizes, data_bytes, args.runs)


def measure_archives(runs, volume, out, image, client, dev8, docker, results, sizes) -> None:
    """The seed's tar pipeline against `dev8 backup` and `dev8 restore`."""
    args = argparse.Namespace(runs=runs)
    docker(
        "run",
        "--rm",
        "-v",
        f"{volume}:/source:ro",
        image,
        "tar",
        "cf",
        "/dev/null",
        "-C",
        "/source",
        ".",
    )

    seed_archive = out / "seed.tar.gz"
    results["seed: docker run ... tar czf"] = median(
        args.runs,
        lambda: docker(
            "run", "--rm", "-v", f"{volume}:/source:ro", "-v", f"{out}:/backup", image,
            "tar", "czf", "/backup/seed.tar.gz", "-C", "/source", ".",
        ),
        lambda: seed_archive.unlink(missing_ok=True),
    )  # fmt: skip
    dev8_archive = out / "bench.tar.zst"
    results["dev8 backup (tar.zst)"] = median(
        args.runs,
        lambda: dev8("backup", "bench", "--volume", "workspace", "-o", str(dev8_archive)),
        lambda: dev8_archive.unlink(missing_ok=True),
    )
    gz_archive = out / "bench.tar.gz"
    results["dev8 backup --format tar.gz"] = median(
        args.runs,
        lambda: dev8(
            "backup", "bench", "--volume", "workspace", "-o", str(gz_archive),
            "--format", "tar.gz",
        ),
        lambda: gz_archive.unlink(missing_ok=True),
    )  # fmt: skip

    def seed_restore() -> None:
        target = client.volumes.create(labels={LABEL_OWNER: OWNER}).name
        docker(
            "run", "--rm", "-v", f"{target}:/target", "-v", f"{out}:/backup", image,
            "tar", "xzf", "/backup/seed.tar.gz", "-C", "/target",
        )  # fmt: skip

    results["seed: docker run ... tar xzf"] = median(args.runs, seed_restore)
    copies = iter(range(args.runs))
    results["dev8 restore --as (checked, staged)"] = median(
        args.runs,
        lambda: dev8(
            "restore", "bench", "--from", str(dev8_archive), "--as", f"copy{next(copies)}"
        ),
    )
    results["dev8 restore in place"] = median(
        args.runs, lambda: dev8("restore", "bench", "--from", str(dev8_archive), "--yes")
    )
    sizes.update(
        seed=seed_archive.stat().st_size,
        zst=dev8_archive.stat().st_size,
        gz=gz_archive.stat().st_size,
    )


def measure_snapshots(runs, data_dir: Path, volume, image, docker, dev8, results) -> None:
    """The first (full) snapshot, then unchanged ones with and without restic, then one
    after a single changed file."""
    state = data_dir / "snapshot-state"
    results["dev8 snapshot create (first, full)"] = timed(
        lambda: dev8("snapshot", "create", "bench")
    )
    results["dev8 snapshot create (no changes, restic runs)"] = median(
        max(runs, 3),
        lambda: dev8("snapshot", "create", "bench"),
        lambda: subprocess.run(["rm", "-rf", str(state)], check=True),
    )
    results["dev8 snapshot create (no changes)"] = median(
        max(runs, 3), lambda: dev8("snapshot", "create", "bench")
    )
    changes = iter(range(max(runs, 3)))
    results["dev8 snapshot create (one file changed)"] = median(
        max(runs, 3),
        lambda: dev8("snapshot", "create", "bench"),
        lambda: docker(
            "run", "--rm", "-v", f"{volume}:/v", image,
            "sh", "-c", f"echo {next(changes)} >> /v/project/src/pkg0/module_0.py",
        ),
    )  # fmt: skip


def report(results: dict[str, float], sizes: dict[str, int], data: int, runs: int) -> None:
    seed_backup = results.get("seed: docker run ... tar czf")
    seed_restore = results.get("seed: docker run ... tar xzf")
    full_snapshot = results["dev8 snapshot create (first, full)"]
    print(f"workspace data {data / GIB:.2f} GiB; median of {runs} run(s); warm page cache")
    print(f"{'operation':<48} {'seconds':>8} {'MiB/s':>7} {'x seed':>7} {'/ full':>7}")
    for name, seconds in results.items():
        baseline = seed_restore if "restore" in name or "xzf" in name else seed_backup
        rate = data / seconds / 1024**2
        versus = f"{baseline / seconds:6.2f}x" if baseline else "      -"
        share = f"{seconds / full_snapshot:7.1%}" if "snapshot" in name else ""
        print(f"{name:<48} {seconds:8.2f} {rate:7.0f} {versus:>7} {share:>7}")
    if sizes and seed_backup:
        print(
            f"archive size: seed tar.gz {sizes['seed'] / 1024**2:.0f} MiB, dev8 tar.zst "
            f"{sizes['zst'] / 1024**2:.0f} MiB ({sizes['zst'] / sizes['seed']:.2f}x), dev8 "
            f"tar.gz {sizes['gz'] / 1024**2:.0f} MiB ({sizes['gz'] / sizes['seed']:.2f}x)"
        )
        speedup = seed_backup / results["dev8 backup (tar.zst)"]
        smaller = sizes["zst"] <= sizes["seed"] * 1.10
        print(
            f"goal: backup >= 2x the seed's throughput with a comparable archive: "
            f"{speedup:.2f}x, archive {sizes['zst'] / sizes['seed']:.2f}x -> "
            f"{'met' if speedup >= 2 and smaller else 'MISSED'}"
        )
    unchanged = results["dev8 snapshot create (no changes)"]
    with_restic = results["dev8 snapshot create (no changes, restic runs)"]
    print(
        f"goal: unchanged snapshot < 10% of the full one: {unchanged / full_snapshot:.1%} -> "
        f"{'met' if unchanged < 0.1 * full_snapshot else 'MISSED'} "
        f"(with restic comparing every file: {with_restic / full_snapshot:.1%})"
    )


if __name__ == "__main__":
    main()
