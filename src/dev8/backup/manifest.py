"""The manifest a dev8 archive carries, and how it is carried without breaking plain tools.

An archive is one volume's tar stream, compressed, exactly as ``tar czf ... -C /source .``
would make it, followed by a trailer holding the manifest:

- zstd: a *skippable frame* (magic 0x184D2A5E), which every zstd decoder ignores;
- gzip: one more gzip member with no content, carrying the manifest in its FEXTRA field;
  gzip decoders concatenate members, so ``tar xzf`` sees the same tar stream.

The trailer's payload is ``JSON || uint32 little-endian length of JSON || b"dev8mnf1"``, so a
reader finds it from the end of the file. ``archive_sha256`` is the SHA-256 of everything
before the trailer: the bytes a decoder reads.
"""

from __future__ import annotations

import builtins
import json
import struct
from dataclasses import asdict, dataclass, field
from typing import Any

from dev8.core.errors import InvalidInput

FORMAT_VERSION = 1
PAYLOAD_MAGIC = b"dev8mnf1"
_LENGTH = struct.Struct("<I")
ZSTD_SKIPPABLE_MAGIC = 0x184D2A5E
_ZSTD_FRAME_HEADER = struct.Struct("<II")
# gzip member: magic, CM=deflate, FLG=FEXTRA, MTIME=0, XFL=0, OS=unknown
_GZIP_HEADER = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff"
_GZIP_SUBFIELD = b"D8"
# An empty final stored deflate block, then CRC32 and ISIZE of nothing.
_GZIP_TAIL = b"\x03\x00" + b"\x00" * 8
_GZIP_MAX_EXTRA = 0xFFFF - 4


@dataclass
class Manifest:
    workspace_id: str
    workspace_name: str
    image: str  # the workspace's image reference
    image_id: str
    volume: str  # role: home, workspace or system
    created_at: str  # ISO 8601, UTC
    compression: str  # zstd or gzip
    entries: int  # tar members: files, directories, links
    files: int  # regular files
    bytes: int  # sum of the regular files' sizes
    archive_sha256: str = ""
    archive_bytes: int = 0
    crash_consistent: bool = False  # taken while the workspace ran
    skipped: list[str] = field(default_factory=list)  # FIFOs, sockets, devices: not archived
    tool: str = "dev8"
    format_version: int = FORMAT_VERSION

    def to_json(self) -> builtins.bytes:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=True).encode()

    @classmethod
    def from_json(cls, data: builtins.bytes) -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            known = {name: raw[name] for name in cls.__dataclass_fields__ if name in raw}
            manifest = cls(**known)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"the archive's manifest is unreadable: {exc}") from None
        if manifest.format_version > FORMAT_VERSION:
            raise InvalidInput(
                f"the archive was made by a newer dev8 (manifest version "
                f"{manifest.format_version}); upgrade dev8 to restore it"
            )
        return manifest


def _payload(manifest: Manifest) -> bytes:
    body = manifest.to_json()
    return body + _LENGTH.pack(len(body)) + PAYLOAD_MAGIC


def _header(compression: str, payload_length: int) -> bytes:
    """Everything of the trailer before its payload."""
    if compression == "zstd":
        return _ZSTD_FRAME_HEADER.pack(ZSTD_SKIPPABLE_MAGIC, payload_length)
    if compression == "gzip":
        if payload_length > _GZIP_MAX_EXTRA:
            raise ValueError("manifest too large for a gzip extra field")
        subfield = _GZIP_SUBFIELD + struct.pack("<H", payload_length)
        return _GZIP_HEADER + struct.pack("<H", len(subfield) + payload_length) + subfield
    raise ValueError(f"no manifest trailer for compression {compression!r}")


def _footer(compression: str) -> bytes:
    return _GZIP_TAIL if compression == "gzip" else b""


def trailer(manifest: Manifest, compression: str) -> bytes:
    """The bytes to append to a compressed tar stream to carry ``manifest``."""
    payload = _payload(manifest)
    return _header(compression, len(payload)) + payload + _footer(compression)


def find_trailer(tail: bytes, file_size: int, compression: str) -> tuple[Manifest, int] | None:
    """The manifest and the size of the data before it, from the last bytes of a file.

    ``tail`` must hold the whole trailer (the last ``MAX_TRAILER`` bytes of the file do).
    None when the file carries no dev8 manifest (e.g. made by plain ``tar czf``).
    """
    if compression not in ("zstd", "gzip"):
        return None
    footer = _footer(compression)
    if not tail.endswith(footer):
        return None
    payload_end = len(tail) - len(footer)
    if payload_end < 12 or tail[payload_end - len(PAYLOAD_MAGIC) : payload_end] != PAYLOAD_MAGIC:
        return None
    (length,) = _LENGTH.unpack(tail[payload_end - 12 : payload_end - 8])
    payload_start = payload_end - 12 - length
    if payload_start < 0:
        return None
    try:
        header = _header(compression, length + 12)
    except ValueError:
        return None
    start = payload_start - len(header)
    if start < 0 or tail[start:payload_start] != header:
        return None
    manifest = Manifest.from_json(tail[payload_start : payload_end - 12])
    return manifest, file_size - (len(tail) - start)


MAX_TRAILER = 64 * 1024
