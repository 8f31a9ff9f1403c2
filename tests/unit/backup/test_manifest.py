"""The manifest trailer, read back by dev8 and ignored by the real zstd, gzip and tar."""

import subprocess

import pytest
from tests.archives import manifest_for, member, write_archive

from dev8.backup.archive import open_archive
from dev8.backup.manifest import MAX_TRAILER, Manifest, find_trailer, trailer
from dev8.core.errors import InvalidInput


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_trailer_round_trip(compression):
    manifest = manifest_for(b"payload", compression, skipped=["./a fifo"])
    data = b"x" * 1000 + trailer(manifest, compression)
    found = find_trailer(data[-MAX_TRAILER:], len(data), compression)
    assert found is not None
    assert found == (manifest, 1000)


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_no_trailer_is_none(compression):
    assert find_trailer(b"\0" * 600, 600, compression) is None
    assert find_trailer(b"dev8mnf1", 8, compression) is None


@pytest.mark.parametrize("compression,tool", [("zstd", "zstd"), ("gzip", "gzip")])
def test_plain_tools_read_through_the_trailer(tmp_path, compression, tool):
    """The trailer is invisible to the real decoders and to tar: archives stay plain."""
    path = write_archive(tmp_path / "a.tar", [member("./hello.txt", data=b"hello\n")], compression)
    listed = subprocess.run(
        f"{tool} -d -c < {path} | tar -tvf -", shell=True, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert "./hello.txt" in listed.stdout
    assert listed.stderr == ""
    target = tmp_path / "out"
    target.mkdir()
    flag = "--zstd" if compression == "zstd" else "-z"
    extracted = subprocess.run(
        ["tar", flag, "-xf", str(path), "-C", str(target)], capture_output=True, text=True
    )
    assert extracted.returncode == 0, extracted.stderr
    assert (target / "hello.txt").read_text() == "hello\n"


def test_open_archive_finds_format_manifest_and_data_size(tmp_path):
    path = write_archive(tmp_path / "a.tar.zst", [member("./f", data=b"1")], volume="workspace")
    archive = open_archive(path)
    assert archive.compression == "zstd"
    assert archive.manifest is not None and archive.manifest.volume == "workspace"
    assert archive.data_size == archive.manifest.archive_bytes < archive.size


def test_archive_without_manifest(tmp_path):
    path = write_archive(tmp_path / "seed.tar.gz", [member("./f")], "gzip", with_manifest=False)
    archive = open_archive(path)
    assert archive.compression == "gzip" and archive.manifest is None
    assert archive.data_size == archive.size


def test_plain_tar_is_recognised(tmp_path):
    path = write_archive(tmp_path / "x.tar", [member("./f")], "none", with_manifest=False)
    assert open_archive(path).compression == "none"


def test_not_an_archive_is_one_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match="not a tar archive"):
        open_archive(tmp_path / "notes.txt")
    with pytest.raises(InvalidInput, match="cannot read"):
        open_archive(tmp_path / "missing.tar.zst")
    with pytest.raises(InvalidInput, match="is a directory"):
        open_archive(tmp_path)


def test_a_newer_manifest_version_asks_for_an_upgrade():
    newer = manifest_for(b"", "zstd", format_version=99).to_json()
    with pytest.raises(InvalidInput, match="newer dev8"):
        Manifest.from_json(newer)


def test_unknown_manifest_fields_are_ignored():
    data = manifest_for(b"", "zstd").to_json().replace(b"{", b'{"future": 1, ', 1)
    assert Manifest.from_json(data).workspace_name == "demo"


def test_garbage_manifest_is_invalid_input():
    with pytest.raises(InvalidInput, match="unreadable"):
        Manifest.from_json(b"{not json")
