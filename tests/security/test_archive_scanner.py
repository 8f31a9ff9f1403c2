"""Issue 16, item 11 (and item 4's restore scan): the archive scanner and GNU tar disagreed.

The scanner checked members with Python's ``tarfile``, which (1) let a later pax ``path``
win over ``GNU.sparse.name`` while GNU tar writes to ``GNU.sparse.name``, (2) silently
stopped at a header with a bad checksum while GNU tar skips to the next header and goes on
extracting, and (3) read a pax header of any declared size into memory (a 16 KB archive cost
515 MiB). Each archive below is built byte by byte; GNU tar itself (the same 1.34 the helper
image runs) shows what it would write, and the scanner must refuse it.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import tarfile
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from dev8.backup.archive import open_archive
from dev8.backup.safety import scan
from dev8.core.errors import CorruptArchive, InvalidInput, UnsafeArchive

BLOCK = 512
needs_gnu_tar = pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")


def header(name: bytes, kind: bytes = b"0", size: int = 0, link: bytes = b"") -> bytes:
    """A ustar header block with a correct checksum (``bad_checksum`` spoils one)."""
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[108:116] = block[116:124] = b"0001750\0"
    block[124:136] = b"%011o\0" % size
    block[136:148] = b"00000000000\0"
    block[156:157] = kind
    block[157 : 157 + len(link)] = link
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def bad_checksum(block: bytes) -> bytes:
    return block[:148] + b"000001\0 " + block[156:]


def padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def pax(*records: tuple[str, str]) -> bytes:
    """A pax extended header with its records in the order given."""
    body = b""
    for key, value in records:
        text = f" {key}={value}\n".encode()
        length = len(text) + len(str(len(text)))
        length += len(str(length)) - len(str(len(text)))
        body += str(length).encode() + text
    return header(b"./PaxHeaders/x", b"x", len(body)) + padded(body)


def member(name: bytes, data: bytes = b"", kind: bytes = b"0", link: bytes = b"") -> bytes:
    return header(name, kind, len(data), link) + padded(data)


ROOT = member(b"./", kind=b"5")
END = bytes(2 * BLOCK)


def write(tmp_path: Path, stream: bytes, name: str = "attack.tar") -> Path:
    path = tmp_path / name
    path.write_bytes(stream)
    return path


def tar_lists(path: Path) -> list[str]:
    """The names GNU tar would extract, in order (it goes on past errors)."""
    listed = subprocess.run(["tar", "-tf", str(path)], capture_output=True, text=True)
    return listed.stdout.splitlines()


@needs_gnu_tar
def test_gnu_sparse_name_is_the_name_checked(tmp_path):
    """A link to /etc, then a member whose pax ``GNU.sparse.name`` goes through the link
    while its later ``path`` looks harmless: tarfile checked ``./harmless``, tar writes
    ``./l/passwd``."""
    stream = (
        ROOT
        + member(b"./l", kind=b"2", link=b"/etc")
        + pax(("GNU.sparse.name", "./l/passwd"), ("path", "./harmless"))
        + member(b"./harmless", b"root::0:0::/:/bin/sh\n")
        + END
    )
    path = write(tmp_path, stream)
    assert "./l/passwd" in tar_lists(path)
    with pytest.raises(UnsafeArchive, match="GNU sparse file in a format other than"):
        scan(open_archive(path))


def test_gnu_sparse_name_alone_is_checked_as_the_name(tmp_path):
    stream = (
        ROOT
        + member(b"./l", kind=b"2", link=b"/etc")
        + pax(("GNU.sparse.name", "./l/passwd"))
        + member(b"./harmless", b"x")
        + END
    )
    with pytest.raises(UnsafeArchive, match="GNU sparse file in a format other than"):
        scan(open_archive(write(tmp_path, stream)))


@pytest.mark.parametrize(
    "records,extra,message",
    [
        ([("path", "./l/passwd")], b"", "through the symbolic link"),
        ([("path", "./l\0/x")], b"", "NUL"),
        ([("linkpath", "")], b"", "empty"),
        ([("path", "./a"), ("path", "./l/passwd")], b"", "twice"),
        ([("GNU.dumpdir", "Yx")], b"", "GNU.dumpdir"),
        ([("GNU.sparse.size", "100")], b"", "GNU.sparse.size"),
        ([("path", "./a")], header(b"././@LongLink", b"L", 11) + padded(b"./l/passwd\0"), "both"),
    ],
)
def test_every_name_override_is_checked_or_refused(tmp_path, records, extra, message):
    stream = (
        ROOT
        + member(b"./l", kind=b"2", link=b"/etc")
        + extra
        + pax(*records)
        + member(b"./harmless", b"x")
        + END
    )
    with pytest.raises(UnsafeArchive, match=message):
        scan(open_archive(write(tmp_path, stream)))


def test_a_gnu_long_name_is_the_name_checked(tmp_path):
    stream = (
        ROOT
        + member(b"./l", kind=b"2", link=b"/etc")
        + header(b"././@LongLink", b"L", 11)
        + padded(b"./l/passwd\0")
        + member(b"./harmless", b"x")
        + END
    )
    with pytest.raises(UnsafeArchive, match="through the symbolic link"):
        scan(open_archive(write(tmp_path, stream)))


@needs_gnu_tar
def test_a_bad_checksum_refuses_the_archive(tmp_path):
    """After a damaged header tarfile stopped (the scan passed, one file); GNU tar skips to
    the next header and extracts what follows: here a FIFO, which the scanner refuses."""
    stream = (
        ROOT
        + member(b"./innocent.txt", b"hello\n")
        + bad_checksum(member(b"./junk", b"x"))
        + member(b"./pipe", kind=b"6")
        + END
    )
    path = write(tmp_path, stream)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(path), "-C", str(out)], capture_output=True)
    assert stat.S_ISFIFO((out / "pipe").lstat().st_mode)  # tar went on past the bad header
    with pytest.raises(CorruptArchive, match="bad checksum"):
        scan(open_archive(path))


@pytest.mark.parametrize("kind", [b"x", b"L", b"K"])
def test_a_huge_extended_header_costs_no_memory(tmp_path, kind):
    """A 512 MiB pax header (or GNU long name) of zeros compresses to a few KB; tarfile
    read all of it into memory. Now it is refused after reading its header."""
    size = 512 * 1024 * 1024
    path = tmp_path / "bomb.tar.zst"
    with path.open("wb") as out, zstandard.ZstdCompressor().stream_writer(out) as writer:
        writer.write(ROOT + header(b"./PaxHeaders/x", kind, size))
        zeros = bytes(1 << 20)
        for _ in range(size // len(zeros)):
            writer.write(zeros)
        writer.write(member(b"./f", b"x") + END)
    assert path.stat().st_size < 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeArchive, match="extended header of 536870912 bytes"):
            scan(open_archive(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def test_a_huge_file_is_skipped_in_bounded_memory(tmp_path):
    size = 256 * 1024 * 1024
    path = tmp_path / "big.tar.zst"
    with path.open("wb") as out, zstandard.ZstdCompressor().stream_writer(out) as writer:
        writer.write(ROOT + header(b"./zeros", b"0", size))
        zeros = bytes(1 << 20)
        for _ in range(size // len(zeros)):
            writer.write(zeros)
        writer.write(END)
    tracemalloc.start()
    try:
        result = scan(open_archive(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.bytes == size
    assert peak < 16 * 1024 * 1024


def test_other_formats_tar_reads_differently_are_refused(tmp_path):
    for kind, message in [(b"g", "global pax"), (b"S", "old GNU sparse"), (b"D", "incremental")]:
        stream = ROOT + member(b"./x", kind=kind) + END
        with pytest.raises(UnsafeArchive, match=message):
            scan(open_archive(write(tmp_path, stream, f"{kind[0]}.tar")))


@pytest.mark.parametrize(
    "stream",
    [
        ROOT + member(b"./d", b"data", kind=b"5") + END,  # a directory carrying data
        ROOT + member(b"./f/", b"data") + END,  # a file tar would make a directory
        ROOT + pax(("path", "./a")) + END,  # a pax header for no member
    ],
)
def test_shapes_tar_and_the_scanner_could_read_differently(tmp_path, stream):
    with pytest.raises(InvalidInput):
        scan(open_archive(write(tmp_path, stream)))


@needs_gnu_tar
def test_gnu_tars_own_sparse_archives_pass(tmp_path):
    """What the backup helper writes (pax, GNU sparse 1.0) is read as tar reads it."""
    source = tmp_path / "src"
    source.mkdir()
    with (source / "sparse.img").open("wb") as sparse:
        sparse.seek(10 * 1024 * 1024)
        sparse.write(b"end")
    deep = source / "long" / ("n" * 150) / ("m" * 150)
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    path = tmp_path / "gnu.tar"
    subprocess.run(
        ["tar", "-C", str(source), "--format=posix", "--sparse", "-cf", str(path), "."],
        check=True,
    )
    result = scan(open_archive(path))
    assert result.files == 2
    assert result.bytes == 10 * 1024 * 1024 + 3 + 1
    with tarfile.open(path) as check:
        assert len(check.getmembers()) == result.members
