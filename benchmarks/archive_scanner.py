"""The restore scan and the helper's stderr splitter are linear (issue 16, item 4).

- Scan: the cost per path component of files at depth 2000 against files at depth 20 (a
  linear scan makes the ratio about 1; the old one, which rebuilt every parent path of each
  member, cost 62 ms per file at depth 2000).
- Splitter: one 32 MiB stderr line arriving in 4 KiB frames against 32 MiB of 80-byte lines
  (the old splitter re-joined the unfinished line at each frame: 17 s of CPU).

No engine needed. Goal: both ratios <= 3x.

    .venv/bin/python benchmarks/archive_scanner.py [--files 200]
"""

from __future__ import annotations

import argparse
import io
import tarfile
import tempfile
import time
from pathlib import Path

from dev8.backup.archive import open_archive
from dev8.backup.safety import scan
from dev8.providers.docker.helpers import _LineSplitter

GOAL = 3.0
SPLIT_BYTES = 32 * 1024 * 1024
FRAME = 4096


def deep_archive(path: Path, depth: int, files: int) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        top = tarfile.TarInfo("./")
        top.type = tarfile.DIRTYPE
        archive.addfile(top)
        parent = "."
        for _ in range(depth - 1):
            parent += "/d"
            entry = tarfile.TarInfo(parent)
            entry.type = tarfile.DIRTYPE
            archive.addfile(entry)
        for index in range(files):
            archive.addfile(tarfile.TarInfo(f"{parent}/f{index}"), io.BytesIO(b""))
    path.write_bytes(buffer.getvalue())
    return path


def scan_seconds_per_component(folder: Path, depth: int, files: int) -> float:
    archive = open_archive(deep_archive(folder / f"depth-{depth}.tar", depth, files))
    start = time.process_time()
    scan(archive)
    return (time.process_time() - start) / (files * depth)


def split_seconds(frames: list[bytes]) -> float:
    splitter = _LineSplitter(lambda _line: None)
    start = time.process_time()
    for frame in frames:
        splitter.feed(frame)
    splitter.flush()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    files = parser.parse_args().files
    with tempfile.TemporaryDirectory() as folder:
        shallow = scan_seconds_per_component(Path(folder), 20, files)
        deep = scan_seconds_per_component(Path(folder), 2000, files)
    lines = (b"x" * 79 + b"\n") * (FRAME // 80) + b"x" * (FRAME % 80)
    many = split_seconds([lines] * (SPLIT_BYTES // FRAME))
    one = split_seconds([b"y" * FRAME] * (SPLIT_BYTES // FRAME))
    scan_ratio, split_ratio = deep / shallow, one / many
    print(f"scan, per component: depth 2000 {deep * 1e6:.2f} us, depth 20 {shallow * 1e6:.2f} us")
    print(f"  ratio {scan_ratio:.2f}x (goal <= {GOAL}x)")
    print(f"split 32 MiB: one line {one:.3f} s, 80-byte lines {many:.3f} s")
    print(f"  ratio {split_ratio:.2f}x (goal <= {GOAL}x)")


if __name__ == "__main__":
    main()
