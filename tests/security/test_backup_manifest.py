"""Issue 16, item 8: a backup of a volume with many sockets or FIFOs lost its manifest.

The manifest listed every skipped entry by name. With enough of them (or long enough
names) a zstd trailer grew past the 64 KiB a reader looked at, so the archive read as a
foreign one and the server refused to restore it; a gzip backup failed with a raw
``ValueError`` (the gzip extra field holds 64 KiB). Now a manifest keeps the count and the
first few names and always fits; a reader finds trailers of any size an older dev8 wrote
(up to 16 MiB), and a hostile trailer is one ``InvalidInput``, never a ``ValueError``.
"""

from __future__ import annotations

import json
import struct

import pytest

from dev8.backup.archive import open_archive
from dev8.backup.manifest import (
    PAYLOAD_MAGIC,
    SKIPPED_KEPT,
    ZSTD_SKIPPABLE_MAGIC,
    Manifest,
    trailer,
)
from dev8.core.errors import InvalidInput
from dev8.core.images import helper_image
from dev8.core.naming import LABEL_OWNER, volume_name
from tests.archives import compress, manifest_for, member, tar_bytes
from tests.integration.backup.conftest import backups, make_workspace  # noqa: F401
from tests.integration.conftest import (  # noqa: F401 (the engine's fixtures)
    OWNER,
    client,
    provider,
    service,
    ssh_key,
    workspace_image,
)

MANY = 100_000


def long_names(count: int) -> list[str]:
    return [f"./run/{'s' * 200}-{index}.sock" for index in range(count)]


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_many_skipped_entries_keep_the_manifest(tmp_path, compression):
    payload = compress(tar_bytes([member("./f", data=b"1")]), compression)
    manifest = manifest_for(payload, compression, skipped=long_names(MANY))
    path = tmp_path / f"a.{compression}"
    path.write_bytes(payload + trailer(manifest, compression))
    found = open_archive(path).manifest
    assert found is not None
    assert found.skipped_count == MANY
    assert len(found.skipped) == SKIPPED_KEPT


def test_non_ascii_names_cannot_overflow_the_gzip_trailer(tmp_path):
    """``ensure_ascii`` makes a 4-byte character 12 bytes of JSON."""
    payload = compress(tar_bytes([member("./f", data=b"1")]), "gzip")
    names = ["./" + "\U0001f600" * 300 + str(index) for index in range(50)]
    path = tmp_path / "a.tar.gz"
    path.write_bytes(payload + trailer(manifest_for(payload, "gzip", skipped=names), "gzip"))
    found = open_archive(path).manifest
    assert found is not None and found.skipped_count == 50


def test_an_older_dev8s_large_zstd_manifest_is_found(tmp_path):
    """What an older dev8 wrote: every skipped name in a skippable frame of 5 MB."""
    payload = compress(tar_bytes([member("./f", data=b"1")]), "zstd")
    fields = {**manifest_for(payload, "zstd").__dict__, "skipped": long_names(20_000)}
    fields.pop("skipped_count")
    body = json.dumps(fields).encode()
    data = body + struct.pack("<I", len(body)) + PAYLOAD_MAGIC
    frame = struct.pack("<II", ZSTD_SKIPPABLE_MAGIC, len(data)) + data
    path = tmp_path / "old.tar.zst"
    path.write_bytes(payload + frame)
    archive = open_archive(path)
    assert archive.manifest is not None and archive.data_size == len(payload)
    assert archive.manifest.skipped_count == 20_000
    assert len(archive.manifest.skipped) == SKIPPED_KEPT


@pytest.mark.parametrize(
    "body",
    [
        b'{"format_version": "2"}',
        b'{"entries": true}',
        b'{"skipped": [1, 2]}',
        b'{"crash_consistent": 1}',
        b"[1, 2, 3]",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"workspace_id": "\xff\xfe"}',
    ],
)
def test_hostile_manifests_are_one_invalid_input(tmp_path, body):
    payload = compress(tar_bytes([member("./f", data=b"1")]), "zstd")
    data = body + struct.pack("<I", len(body)) + PAYLOAD_MAGIC
    path = tmp_path / "hostile.tar.zst"
    path.write_bytes(payload + struct.pack("<II", ZSTD_SKIPPABLE_MAGIC, len(data)) + data)
    with pytest.raises(InvalidInput, match="manifest is unreadable") as raised:
        open_archive(path)
    assert "\n" not in str(raised.value)


def test_a_huge_declared_manifest_is_not_read(tmp_path):
    """A trailer claiming 4 GiB is not a manifest: nothing that large is read."""
    payload = compress(tar_bytes([member("./f", data=b"1")]), "zstd")
    path = tmp_path / "liar.tar.zst"
    path.write_bytes(payload + struct.pack("<I", 0xFFFFFFFF) + PAYLOAD_MAGIC)
    archive = open_archive(path)
    assert archive.manifest is None and archive.data_size == archive.size


def test_a_manifest_field_of_the_wrong_type_is_refused_directly():
    with pytest.raises(InvalidInput, match="format_version is not a whole number"):
        Manifest.from_json(b'{"format_version": 1.5}')


SOCKETS_AND_FIFOS = """import os, socket, sys
os.makedirs("/v/run", exist_ok=True)
os.chdir("/v/run")
for index in range(3000):
    socket.socket(socket.AF_UNIX).bind(f"{'s' * 100}{index}")
    os.mkfifo(f"{'f' * 200}{index}")
open("/v/kept.txt", "w").write("kept")
"""


@pytest.mark.parametrize("archive_format", ["tar.zst", "tar.gz"])
def test_a_real_backup_of_thousands_of_sockets_keeps_its_manifest(
    backups,  # noqa: F811
    make_workspace,  # noqa: F811
    client,  # noqa: F811
    tmp_path,
    archive_format,
):
    """3000 sockets and 3000 FIFOs with names of 100 and 200 characters (1 MB of names):
    the zstd archive lost its manifest, the gzip backup failed with a ValueError."""
    workspace = make_workspace("many-sockets")
    volume = volume_name(workspace.id, "workspace")
    client.containers.run(
        helper_image(),
        ["python3", "-c", SOCKETS_AND_FIFOS],
        volumes={volume: {"bind": "/v", "mode": "rw"}},
        labels={LABEL_OWNER: OWNER},
        network_mode="none",
        remove=True,
    )
    [result] = backups.backup(
        "many-sockets", volume="workspace", output=tmp_path, archive_format=archive_format
    )
    assert result.manifest.skipped_count == 6000
    assert result.warnings[-1] == f"... and {6000 - SKIPPED_KEPT} more not archived"
    found = open_archive(result.path).manifest
    assert found is not None and found.skipped_count == 6000
    _, checked = backups.verify(result.path)
    assert checked.files == 1
