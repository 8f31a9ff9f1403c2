"""Building archives in tests: real tar streams, compressed by the real libraries."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import zstandard

from dev8.backup.manifest import Manifest, trailer

Member = tuple[tarfile.TarInfo, bytes | None]


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.uid = info.gid = 1000
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


def tar_bytes(members: list[Member], root: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        if root:
            archive.addfile(member("./", tarfile.DIRTYPE)[0])
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    if compression == "gzip":
        return gzip.compress(data)
    return data


def manifest_for(payload: bytes, compression: str, **overrides) -> Manifest:
    import hashlib

    values = dict(
        workspace_id="abc123def456",
        workspace_name="demo",
        image="dev8/workspace:latest",
        image_id="sha256:feed",
        volume="home",
        created_at="2026-01-01T00:00:00Z",
        compression=compression,
        entries=1,
        files=0,
        bytes=0,
        archive_sha256=hashlib.sha256(payload).hexdigest(),
        archive_bytes=len(payload),
    )
    values.update(overrides)
    return Manifest(**values)


def write_archive(
    path: Path,
    members: list[Member],
    compression: str = "zstd",
    with_manifest: bool = True,
    tamper: Callable[[bytes], bytes] | None = None,
    **manifest_fields,
) -> Path:
    payload = compress(tar_bytes(members), compression)
    extra = b""
    if with_manifest:
        extra = trailer(manifest_for(payload, compression, **manifest_fields), compression)
    if tamper is not None:
        payload = tamper(payload)
    path.write_bytes(payload + extra)
    return path
