"""The manifest a dev8 archive carries, and how it is carried without breaking plain tools.

An archive is one volume's tar stream, compressed, exactly as ``tar czf ... -C /source .``
would make it, followed by a trailer holding the manifest:

- zstd: a *skippable frame* (magic 0x184D2A5E), which every zstd decoder ignores;
- gzip: one more gzip member with no content, carrying the manifest in its FEXTRA field;
  gzip decoders concatenate members, so ``tar xzf`` sees the same tar stream.

The trailer's payload is ``JSON || uint32 little-endian length of JSON || b"dev8mnf1"``, so a
reader finds it from the end of the file. ``archive_sha256`` is the SHA-256 of everything
before the trailer: the bytes a decoder reads.

A manifest always fits its trailer, whatever the volume holds: of the entries a backup
skips (sockets, FIFOs, devices) it keeps the count and the first ``SKIPPED_KEPT`` names,
each cut to ``NAME_KEPT`` characters. Reading checks every field's type and bounds what it
keeps, so a hostile or damaged trailer is one ``InvalidInput``, never a ``ValueError``.
"""

from __future__ import annotations

import builtins
import json
import struct
from dataclasses import asdict, dataclass, field, replace
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
SKIPPED_KEPT = 20
NAME_KEPT = 200
MAX_PAYLOAD = _GZIP_MAX_EXTRA  # what a trailer carries, in either format
MAX_READ_PAYLOAD = 16 * 1024 * 1024  # what a reader accepts (older dev8 wrote unbounded ones)


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
    skipped: list[str] = field(default_factory=list)  # FIFOs, sockets, devices: the first few
    skipped_count: int = 0  # all of them (0 in manifests older than the count)
    tool: str = "dev8"
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.skipped_count = max(self.skipped_count, len(self.skipped))
        self.skipped = [name[:NAME_KEPT] for name in self.skipped[:SKIPPED_KEPT]]

    def to_json(self) -> builtins.bytes:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=True).encode()

    @classmethod
    def from_json(cls, data: builtins.bytes) -> Manifest:
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(
                f"the archive's manifest is unreadable: {_first_line(exc)}"
            ) from None
        if not isinstance(raw, dict):
            raise InvalidInput("the archive's manifest is unreadable: not a JSON object")
        manifest = cls(**_typed_fields(raw))
        if manifest.format_version > FORMAT_VERSION:
            raise InvalidInput(
                f"the archive was made by a newer dev8 (manifest version "
                f"{manifest.format_version}); upgrade dev8 to restore it"
            )
        return manifest


def _typed_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The manifest's known fields from a JSON object, each of its declared type."""
    known: dict[str, Any] = {}
    for name, spec in Manifest.__dataclass_fields__.items():
        if name not in raw:
            continue
        value, kind = raw[name], _FIELD_TYPES[str(spec.type)]
        if kind is list:
            valid = isinstance(value, list) and all(isinstance(item, str) for item in value)
        else:
            valid = type(value) is kind  # bool is not an int here, nor an int a bool
        if not valid:
            raise InvalidInput(
                f"the archive's manifest is unreadable: {name} is not {_TYPE_NAMES[kind]}"
            )
        known[name] = value
    return known


_FIELD_TYPES: dict[str, type] = {"str": str, "int": int, "bool": bool, "list[str]": list}
_TYPE_NAMES = {
    str: "a string",
    int: "a whole number",
    bool: "true or false",
    list: "a list of strings",
}


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]


def _payload(manifest: Manifest) -> bytes:
    body = manifest.to_json()
    return body + _LENGTH.pack(len(body)) + PAYLOAD_MAGIC


def fitted(manifest: Manifest) -> Manifest:
    """``manifest`` with as many skipped names as fit a trailer (the count stays whole)."""
    while len(_payload(manifest)) > MAX_PAYLOAD and manifest.skipped:
        manifest = replace(manifest, skipped=manifest.skipped[: len(manifest.skipped) // 2])
    if len(_payload(manifest)) > MAX_PAYLOAD:
        raise InvalidInput("the backup's manifest is too large (its image name is too long?)")
    return manifest


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
    """The bytes to append to a compressed tar stream to carry ``manifest`` (``fitted``)."""
    payload = _payload(fitted(manifest))
    return _header(compression, len(payload)) + payload + _footer(compression)


def trailer_size(tail: bytes, compression: str) -> int | None:
    """How many bytes at the end of a file its trailer takes, from at least its last
    ``TRAILER_END`` bytes; None when they are not the end of a dev8 trailer (or declare one
    larger than ``MAX_READ_PAYLOAD``)."""
    if compression not in ("zstd", "gzip"):
        return None
    footer = _footer(compression)
    payload_end = len(tail) - len(footer)
    if payload_end < 12 or not tail.endswith(footer):
        return None
    if tail[payload_end - len(PAYLOAD_MAGIC) : payload_end] != PAYLOAD_MAGIC:
        return None
    (length,) = _LENGTH.unpack(tail[payload_end - 12 : payload_end - 8])
    if length > MAX_READ_PAYLOAD or (compression == "gzip" and length + 12 > _GZIP_MAX_EXTRA):
        return None
    return len(_header(compression, length + 12)) + length + 12 + len(footer)


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
TRAILER_END = 12 + len(_GZIP_TAIL)  # enough of a file's end to find its trailer's size
