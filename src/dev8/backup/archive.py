"""Archive files on the host: what format, where the data ends, what the manifest says, and
the decompressed tar stream for checking (see ``safety``)."""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol, cast

import zstandard

from dev8.backup.manifest import (
    MAX_TRAILER,
    TRAILER_END,
    Manifest,
    find_trailer,
    trailer_size,
)
from dev8.core.errors import CorruptArchive, InvalidInput

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
SUFFIXES = {"zstd": ".tar.zst", "gzip": ".tar.gz"}
FORMATS = {"tar.zst": "zstd", "tar.gz": "gzip"}  # --format value -> compression
READ_SIZE = 1 << 20


class ReadableStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class ArchiveFile:
    path: Path
    compression: str  # zstd, gzip or none
    size: int  # the whole file
    data_size: int  # the compressed tar stream, before the manifest trailer
    manifest: Manifest | None  # None: not made by dev8 (e.g. the seed's `tar czf`)


def open_archive(path: Path) -> ArchiveFile:
    """Identify ``path`` and read its manifest; nothing is decompressed yet."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(512)
            compression = detect_compression(head)
            tail = _trailer_bytes(handle, size, compression)
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory; name an archive file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    if compression is None:
        raise CorruptArchive(f"{path} is not a tar archive (zstd, gzip or plain tar)")
    found = find_trailer(tail, size, compression)
    manifest, data_size = found if found else (None, size)
    return ArchiveFile(path, compression, size, data_size, manifest)


def _trailer_bytes(handle: BinaryIO, size: int, compression: str | None) -> bytes:
    """The last bytes of the file, as many as its trailer declares (bounded by
    ``manifest.MAX_READ_PAYLOAD``) or ``MAX_TRAILER``."""
    handle.seek(max(0, size - TRAILER_END))
    declared = trailer_size(handle.read(), compression or "none")
    handle.seek(max(0, size - max(declared or 0, MAX_TRAILER)))
    return handle.read()


def detect_compression(head: bytes) -> str | None:
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "none"
    return None


class HashingReader:
    """Reads the first ``limit`` bytes of a file, counting them and hashing them on another
    thread (hashlib and the decompressors release the GIL, so both cores work)."""

    def __init__(
        self, handle: BinaryIO, limit: int, on_bytes: Callable[[int], None] | None = None
    ) -> None:
        self.handle = handle
        self.left = limit
        self.count = 0
        self.on_bytes = on_bytes
        self._sha256 = hashlib.sha256()
        self._digest: str | None = None
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._hasher = threading.Thread(target=self._hash, name="sha256", daemon=True)
        self._hasher.start()

    def _hash(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._sha256.update(chunk)

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self.left:
            size = self.left
        data = self.handle.read(size)
        self.left -= len(data)
        self.count += len(data)
        if data:
            self._chunks.put(data)
            if self.on_bytes is not None:
                self.on_bytes(len(data))
        return data

    def drain(self) -> None:
        while self.read(READ_SIZE):
            pass

    def finish(self) -> str:
        """Stop hashing; the SHA-256 of everything read."""
        if self._digest is None:
            self._chunks.put(None)
            self._hasher.join()
            self._digest = self._sha256.hexdigest()
        return self._digest


class ForwardReader(io.RawIOBase):
    """Makes a stream look seekable to ``tarfile`` for forward seeks only, which then skips
    file contents into a scratch buffer instead of copying them through its stream mode."""

    def __init__(self, inner: ReadableStream) -> None:
        super().__init__()
        self.inner = inner
        self.position = 0
        self._scratch = memoryview(bytearray(READ_SIZE))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.position += len(data)
        return data

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset + (self.position if whence == io.SEEK_CUR else 0)
        if whence == io.SEEK_END or target < self.position:
            raise io.UnsupportedOperation("only forward seeks")
        while self.position < target:
            want = min(len(self._scratch), target - self.position)
            if hasattr(self.inner, "readinto"):
                got = self.inner.readinto(self._scratch[:want])
            else:
                got = len(self.inner.read(want))
            if not got:
                break
            self.position += got
        return self.position


class _GzipMembers:
    """Decompresses concatenated gzip members (what pigz and a dev8 trailer produce), with
    bounded memory however well the data compresses."""

    def __init__(self, raw: HashingReader) -> None:
        self.raw = raw
        self._inflate = zlib.decompressobj(wbits=31)
        self._fed = False
        self._pending = b""
        self._buffer = b""
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._buffer) < size):
            self._fill()
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _fill(self) -> None:
        if self._inflate.eof:
            self._pending = self._inflate.unused_data
            self._inflate, self._fed = zlib.decompressobj(wbits=31), False
        if not self._pending:
            self._pending = self.raw.read(READ_SIZE)
            if not self._pending:
                if self._fed and not self._inflate.eof:
                    raise zlib.error("the data ends in the middle of a gzip member")
                self._eof = True
                return
        self._fed = True
        self._buffer += self._inflate.decompress(self._pending, READ_SIZE)
        self._pending = self._inflate.unconsumed_tail


def decompressed(archive: ArchiveFile, raw: HashingReader) -> ForwardReader:
    """The tar stream inside ``archive``, for ``tarfile.open(fileobj=..., mode="r:")``."""
    inner: ReadableStream
    if archive.compression == "zstd":
        inner = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], raw), read_size=READ_SIZE, read_across_frames=True
        )
    elif archive.compression == "gzip":
        inner = _GzipMembers(raw)
    else:
        inner = raw
    return ForwardReader(inner)


DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (zstandard.ZstdError, zlib.error, EOFError)
