"""The checks every archive passes before a restore writes anything."""

import tarfile

import pytest
from tests.archives import member, write_archive

from dev8.backup.archive import open_archive
from dev8.backup.safety import normalise, scan
from dev8.core.errors import CorruptArchive, UnsafeArchive

DIR, SYM, LNK = tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def check(tmp_path, members, compression="zstd", **kw):
    return scan(open_archive(write_archive(tmp_path / "a", members, compression, **kw)))


def test_a_normal_volume_passes_and_is_counted(tmp_path):
    result = check(
        tmp_path,
        [
            member("./.bashrc", data=b"alias ll='ls -l'\n"),
            member("./project", DIR),
            member("./project/a file with spaces.py", data=b"print(1)\n"),
            member("./project/.venv/bin/python", SYM, link="/usr/bin/python3"),
            member("./project/link", SYM, link="../.bashrc"),
            member("./project/hard", LNK, link="./.bashrc"),
            member("./deep/implicit/dirs.txt", data=b"x"),
        ],
    )
    # the top, 4 files, 2 symbolic links, the hard link, and 4 directories (3 implicit)
    assert result.entries == 12
    assert result.files == 4
    assert result.bytes == 17 + 9 + 17 + 1
    assert result.members == 8
    assert len(result.sha256) == 64


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_every_format_is_scanned(tmp_path, compression):
    result = check(tmp_path, [member("./f", data=b"abc")], compression, with_manifest=False)
    assert result.files == 1 and result.bytes == 3


@pytest.mark.parametrize(
    "members,message",
    [
        ([member("/etc/passwd", data=b"x")], "absolute path"),
        ([member("../outside", data=b"x")], "'..' component"),
        ([member("./a/../../outside", data=b"x")], "'..' component"),
        ([member("./link", SYM, link="/etc"), member("./link/passwd", data=b"x")], "through"),
        (
            [member("./d", DIR), member("./d/l", SYM, link="../.."), member("./d/l/x")],
            "outside the volume",
        ),
        ([member("./l", SYM, link="../../etc")], "points outside the volume"),
        ([member("./h", LNK, link="/etc/shadow")], "absolute path"),
        ([member("./h", LNK, link="../shadow")], "'..' component"),
        ([member("./h", LNK, link="./not-in-archive")], "points outside the volume"),
        (
            [member("./l", SYM, link="/etc"), member("./h", LNK, link="./l/passwd")],
            "points outside the volume",
        ),
        ([member("./dev", tarfile.CHRTYPE)], "character device"),
        ([member("./disk", tarfile.BLKTYPE)], "block device"),
        ([member("./pipe", tarfile.FIFOTYPE)], "FIFO"),
        ([member("./.dev8-restore/incoming/x")], "reserves"),
        ([member(".", tarfile.REGTYPE, data=b"x")], "top entry is not a directory"),
        ([member("./", tarfile.REGTYPE, data=b"x")], "ending in"),
    ],
)
def test_unsafe_archives_are_refused(tmp_path, members, message):
    with pytest.raises(UnsafeArchive, match=message):
        check(tmp_path, members)


def test_a_link_redefined_as_a_directory_is_fine(tmp_path):
    result = check(
        tmp_path,
        [member("./d", SYM, link="/etc"), member("./d", DIR), member("./d/f", data=b"1")],
    )
    assert result.files == 1


def test_checksum_mismatch_is_refused(tmp_path):
    def flip(data: bytes) -> bytes:
        return data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:]

    with pytest.raises(CorruptArchive):
        check(tmp_path, [member("./f", data=b"x" * 1000)], tamper=flip)


def test_manifest_checksum_of_other_data_is_refused(tmp_path):
    with pytest.raises(CorruptArchive, match="does not match its manifest"):
        check(tmp_path, [member("./f", data=b"1")], archive_sha256="0" * 64)


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_truncated_archives_are_refused(tmp_path, compression):
    path = write_archive(
        tmp_path / "a", [member("./f", data=bytes(range(256)) * 400)], compression, False
    )
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptArchive, match="corrupt or truncated"):
        scan(open_archive(path))


def test_garbage_after_a_valid_header_is_refused(tmp_path):
    path = tmp_path / "junk.tar.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 100)
    with pytest.raises(CorruptArchive):
        scan(open_archive(path))


def test_empty_archive_is_refused(tmp_path):
    path = write_archive(tmp_path / "a", [], "zstd", False)
    path.write_bytes(__import__("zstandard").ZstdCompressor().compress(b"\0" * 1024))
    with pytest.raises(CorruptArchive, match="no files"):
        scan(open_archive(path))


@pytest.mark.parametrize(
    "name,expected", [("./", ""), (".", ""), ("./a//b/", "a/b"), ("a/./b", "a/b")]
)
def test_normalise(name, expected):
    assert normalise(name) == expected


def test_progress_sees_every_raw_byte(tmp_path):
    path = write_archive(tmp_path / "a", [member("./f", data=b"y" * 5000)], "gzip")
    archive = open_archive(path)
    seen = []
    scan(archive, seen.append)
    assert sum(seen) == archive.data_size
