"""Backups and restores against the real engine, real volumes, real tar, zstd and gzip."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from dev8.backup.archive import open_archive
from dev8.core.errors import CorruptArchive, InvalidInput, UnsafeArchive
from dev8.core.naming import volume_name
from tests.integration.backup.helpers import generate, helper_image, listing, shell


@pytest.mark.parametrize("archive_format", ["tar.zst", "tar.gz"])
def test_round_trip_into_a_new_workspace_keeps_everything(
    backups, make_workspace, service, client, tmp_path, archive_format
):
    """Bytes, modes, owners, link targets, hard links, empty directories, sparse files and
    nanosecond times of a tricky tree survive a backup and a restore into a new workspace."""
    ws = make_workspace("roundtrip")
    source = volume_name(ws.id, "workspace")
    generate(client, source)
    before = listing(client, source)
    assert before["sparse.img"]["sparse"] and before["names/hard-link"]["linked_with"]

    [result] = backups.backup(
        "roundtrip", volume="workspace", output=tmp_path, archive_format=archive_format
    )
    manifest = result.manifest
    assert (manifest.workspace_id, manifest.workspace_name, manifest.volume) == (
        ws.id,
        "roundtrip",
        "workspace",
    )
    assert manifest.image == ws.image_ref and manifest.image_id == ws.image_id
    assert manifest.entries == len(before)
    assert manifest.files == sum(1 for e in before.values() if "sha256" in e)
    assert manifest.bytes == sum(e.get("size", 0) for e in before.values())
    data = result.path.read_bytes()
    assert hashlib.sha256(data[: manifest.archive_bytes]).hexdigest() == manifest.archive_sha256
    assert hashlib.sha256(data).hexdigest() == result.file_sha256
    assert result.path.stat().st_mode & 0o777 == 0o600  # it holds the user's files

    restored = backups.restore("roundtrip", [result.path], as_name="roundtrip-copy")
    assert restored.created and restored.roles == ["workspace"]
    copy = service.find("roundtrip-copy")
    assert listing(client, volume_name(copy.id, "workspace")) == before


def test_backup_of_all_volumes_and_restore_in_place(backups, make_workspace, client, tmp_path):
    ws = make_workspace("allvols")
    for role in ("home", "workspace", "system"):
        shell(client, volume_name(ws.id, role), f"echo {role} > /v/{role}.txt")
    before = {role: listing(client, volume_name(ws.id, role)) for role in ("home", "workspace")}
    results = backups.backup("allvols", output=tmp_path)
    assert sorted(r.role for r in results) == ["home", "system", "workspace"]
    assert all(r.path.name.startswith("allvols-") for r in results)
    for role in ("home", "workspace"):
        shell(client, volume_name(ws.id, role), "rm -f /v/*.txt; echo later > /v/later.txt")
    paths = [r.path for r in results if r.role != "system"]
    outcome = backups.restore("allvols", paths)
    assert not outcome.created and sorted(outcome.roles) == ["home", "workspace"]
    for role in ("home", "workspace"):
        after = listing(client, volume_name(ws.id, role))
        assert after == before[role]
    assert b".dev8-restore" not in shell(client, volume_name(ws.id, "home"), "ls -a /v")


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        top = tarfile.TarInfo("./")
        top.type = tarfile.DIRTYPE
        archive.addfile(top)
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _member(name, kind=tarfile.REGTYPE, data=b"pwned\n", link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


def _flip_byte_in_data(path: Path) -> None:
    archive = open_archive(path)
    data = bytearray(path.read_bytes())
    data[archive.data_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: open_archive(path).data_size // 2])


def _other_data_same_manifest(path: Path) -> None:
    """A valid archive of the same files, compressed differently, under the genuine
    manifest: only the checksum can tell."""
    archive = open_archive(path)
    data = path.read_bytes()
    tar = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data[: archive.data_size])).read()
    path.write_bytes(zstandard.ZstdCompressor(level=19).compress(tar) + data[archive.data_size :])


MALICIOUS = {
    "path traversal": ([_member("./../../etc/cron.d/evil")], UnsafeArchive, "'..' component"),
    "absolute path": ([_member("/etc/cron.d/evil")], UnsafeArchive, "absolute path"),
    "write through a symlink": (
        [_member("./etc", tarfile.SYMTYPE, link="/etc"), _member("./etc/cron.d/evil")],
        UnsafeArchive,
        "through the symbolic link",
    ),
    "hard link out of the volume": (
        [_member("./shadow", tarfile.LNKTYPE, link="/etc/shadow")],
        UnsafeArchive,
        "absolute path",
    ),
    "device node": ([_member("./sda", tarfile.BLKTYPE)], UnsafeArchive, "block device"),
    "FIFO": ([_member("./pipe", tarfile.FIFOTYPE)], UnsafeArchive, "FIFO"),
}


@pytest.fixture
def victim(backups, make_workspace, client, tmp_path):
    """A workspace with data, and a genuine backup of its workspace volume."""
    ws = make_workspace("victim")
    volume = volume_name(ws.id, "workspace")
    shell(
        client,
        volume,
        "mkdir -p /v/src && echo 'precious' > /v/src/main.py && chown -R 1000:1000 /v",
    )
    [genuine] = backups.backup("victim", volume="workspace", output=tmp_path)
    shell(client, volume, "echo 'newer work' > /v/src/main.py")
    return ws, volume, genuine.path


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_are_refused_and_the_volume_is_unchanged(
    backups, victim, client, tmp_path, case
):
    _ws, volume, _genuine = victim
    members, error, message = MALICIOUS[case]
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(_tar(members))
    before = listing(client, volume)
    with pytest.raises(error, match=message):
        backups.restore("victim", [evil], volume="workspace")
    assert listing(client, volume) == before
    assert b".dev8-restore" not in shell(client, volume, "ls -a /v")


@pytest.mark.parametrize(
    "damage,message",
    [
        (_flip_byte_in_data, "corrupt|does not match"),
        (_truncate, "corrupt or truncated"),
        (_other_data_same_manifest, "does not match its manifest"),
    ],
    ids=["corrupted", "truncated", "manifest checksum mismatch"],
)
def test_damaged_archives_are_refused_and_the_volume_is_unchanged(
    backups, victim, client, damage, message
):
    _ws, volume, genuine = victim
    damage(genuine)
    before = listing(client, volume)
    with pytest.raises(CorruptArchive, match=message):
        # A truncated file has lost its manifest too, so say which volume it holds.
        backups.restore("victim", [genuine], volume="workspace")
    assert listing(client, volume) == before


def test_an_archive_for_another_volume_is_refused(backups, victim):
    _ws, _volume, genuine = victim
    with pytest.raises(InvalidInput, match="holds the workspace volume, not home"):
        backups.restore("victim", [genuine], volume="home")


def test_the_seeds_own_backup_restores_with_dev8(backups, make_workspace, client, tmp_path):
    """The seed's exact backup command (with this engine's image in place of ubuntu, which
    no registry can provide here) makes an archive dev8 restores."""
    ws = make_workspace("seedcompat")
    volume = volume_name(ws.id, "home")
    generate(client, volume)
    before = listing(client, volume)
    subprocess.run(
        [
            "docker", "run", "--rm",
            "-v", f"{volume}:/source:ro",
            "-v", f"{tmp_path}:/backup",
            helper_image(),
            "tar", "czf", "/backup/dev8-home-backup.tar.gz", "-C", "/source", ".",
        ],
        check=True,
    )  # fmt: skip
    seed_archive = tmp_path / "dev8-home-backup.tar.gz"
    assert open_archive(seed_archive).manifest is None
    with pytest.raises(InvalidInput, match="no dev8 manifest"):
        backups.restore("seedcompat", [seed_archive], as_name="seedcopy")
    backups.restore("seedcompat", [seed_archive], volume="home", as_name="seedcopy")
    copy = backups.workspaces.find("seedcopy")
    # The seed's tar keeps whole seconds and writes holes as zeros: that much is lost in
    # its archive, not in the restore.
    assert _coarse(listing(client, volume_name(copy.id, "home"))) == _coarse(before)


def _coarse(entries: dict) -> dict:
    return {
        path: {
            **{k: v for k, v in entry.items() if k != "sparse"},
            "mtime_ns": entry["mtime_ns"] // 10**9,
        }
        for path, entry in entries.items()
    }


def test_a_tar_gz_backup_restores_with_the_seeds_own_command(
    backups, make_workspace, client, tmp_path, scratch_volumes
):
    ws = make_workspace("seedrestore")
    generate(client, volume_name(ws.id, "home"))
    before = listing(client, volume_name(ws.id, "home"))
    backups.backup(
        "seedrestore", volume="home", output=tmp_path / "dev8-home-backup.tar.gz",
        archive_format="tar.gz",
    )  # fmt: skip
    target = scratch_volumes().name
    subprocess.run(
        [
            "docker", "run", "--rm",
            "-v", f"{target}:/target",
            "-v", f"{tmp_path}:/backup",
            helper_image(),
            "tar", "xzf", "/backup/dev8-home-backup.tar.gz", "-C", "/target",
        ],
        check=True,
    )  # fmt: skip
    assert listing(client, target) == before


def test_bad_output_choices_are_clear_errors(backups, make_workspace, tmp_path):
    make_workspace("outputs")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InvalidInput, match="give a directory"):
        backups.backup("outputs", output=out / "one.tar.zst")
    with pytest.raises(InvalidInput, match=r"--format tar\.gz"):
        backups.backup("outputs", volume="home", output=out / "home.tar.gz")
    with pytest.raises(InvalidInput, match="does not exist"):
        backups.backup("outputs", output=f"{out}/missing/")
    with pytest.raises(InvalidInput, match="unknown volume"):
        backups.backup("outputs", volume="etc")
    assert list(out.iterdir()) == []
