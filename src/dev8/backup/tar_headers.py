"""A tar stream's members as GNU tar extracts them, read in one pass with bounded memory.

Python's ``tarfile`` and GNU tar disagree on enough corners (which of a pax ``path``,
``GNU.sparse.name`` or GNU long name wins, a NUL inside a pax path, what follows a header
with a bad checksum) that an archive can show the scanner one name while tar writes another.
So the scanner reads headers itself, accepts the shapes GNU tar and ``tarfile`` write
(ustar, pax, GNU long names, GNU sparse 1.0) and refuses whatever it cannot read the way
tar would, rather than guess:

- a header with a bad checksum (tar would skip to the next valid-looking header, possibly
  one hidden inside a file's data);
- global pax headers, Solaris ``X`` headers, old GNU sparse ``S``, volume and multi-volume
  headers, pax keywords tar might act on that are not listed below, duplicate keywords, two
  name sources for one member (pax ``path`` with a GNU long name or ``GNU.sparse.name``);
- a NUL inside a pax name, a non-empty link or directory, a sparse map that does not add up;
- an extended header or long name over ``MAX_EXTENDED`` bytes: nothing is buffered beyond
  that, and file contents are skipped in ``READ_SIZE`` chunks.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from dev8.core.errors import CorruptArchive, UnsafeArchive

BLOCK = 512
MAX_EXTENDED = 64 * 1024
MAX_SPARSE_REGIONS = 1 << 20
FILE, DIR, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"
_KINDS = {b"0": FILE, b"\0": FILE, b"7": FILE, b"5": DIR, b"2": SYMLINK, b"1": HARDLINK}
_REFUSED_KINDS = {
    b"3": "a character device",
    b"4": "a block device",
    b"6": "a FIFO",
    b"g": "a global pax header",
    b"X": "a Solaris extended header",
    b"S": "an old GNU sparse file",
    b"V": "a volume label",
    b"M": "a multi-volume continuation",
    b"D": "a GNU incremental directory",
}
_POSIX_MAGIC, _GNU_MAGIC = b"ustar\x0000", b"ustar  \x00"
# pax keywords tar acts on as dev8 extracts (no --xattrs/--acls), or ignores.
_PAX_KEYWORDS = {
    "path", "linkpath", "size", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname",
    "charset", "comment", "hdrcharset", "SCHILY.dev", "SCHILY.ino", "SCHILY.nlink",
    "GNU.sparse.major", "GNU.sparse.minor", "GNU.sparse.name", "GNU.sparse.realsize",
}  # fmt: skip
_PAX_PREFIXES = ("SCHILY.xattr.", "LIBARCHIVE.xattr.", "SCHILY.acl.")
_SPARSE_1_0 = {"GNU.sparse.major", "GNU.sparse.minor", "GNU.sparse.name", "GNU.sparse.realsize"}


class Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int: ...

    def tell(self) -> int: ...


@dataclass(frozen=True)
class Member:
    name: str  # the bytes tar writes to, surrogate-escaped where not UTF-8
    kind: str  # FILE, DIR, SYMLINK or HARDLINK
    linkname: str
    size: int  # a file's apparent size (a sparse file's real size)


def shown(name: str, limit: int = 160) -> str:
    """A name for a one-line message: quoted, escaped, cut."""
    return repr(name[:limit]) + ("..." if len(name) > limit else "")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _nts(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


class _Reader:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def exact(self, size: int) -> bytes:
        data = self.stream.read(size)
        while len(data) < size:
            more = self.stream.read(size - len(data))
            if not more:
                raise CorruptArchive("the tar stream ends in the middle of a member")
            data += more
        return data

    def skip(self, size: int) -> None:
        start = self.stream.tell()
        if self.stream.seek(size, io.SEEK_CUR) - start != size:
            raise CorruptArchive("the tar stream ends in the middle of a member")

    @property
    def offset(self) -> int:
        return self.stream.tell()


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _number(field: bytes, what: str) -> int:
    """An octal or base-256 header number, strictly (GNU tar's own forms)."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if not all(48 <= c <= 55 for c in text):
        raise CorruptArchive(f"a tar header's {what} field is not a number ({text[:20]!r})")
    return int(text, 8)


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156], "checksum")
    blanked = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(blanked)
    signed = unsigned - 256 * sum(1 for byte in blanked if byte > 127)
    return stored in (unsigned, signed)


def _pax_records(data: bytes) -> dict[str, bytes]:
    """``LEN KEYWORD=VALUE\\n`` records, strictly; a repeated keyword is refused."""
    records: dict[str, bytes] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position, position + 20)
        length_text = data[position:space] if space > 0 else b""
        if not length_text.isdigit():
            raise CorruptArchive("a pax header has a malformed record")
        end = position + int(length_text)
        record = data[space + 1 : end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise CorruptArchive("a pax header has a malformed record")
        keyword_raw, _, value = record[:-1].partition(b"=")
        keyword = keyword_raw.decode("utf-8", "replace")
        if keyword in records:
            raise UnsafeArchive(f"a pax header sets {shown(keyword)} twice")
        records[keyword] = value
        position = end
    return records


def _check_pax(records: dict[str, bytes]) -> None:
    for keyword in records:
        if keyword not in _PAX_KEYWORDS and not keyword.startswith(_PAX_PREFIXES):
            raise UnsafeArchive(
                f"the archive uses the pax keyword {shown(keyword)}, which dev8 does not "
                "restore (it could change what tar writes)"
            )
    sparse = _SPARSE_1_0 & records.keys()
    if sparse and (
        sparse != _SPARSE_1_0
        or records["GNU.sparse.major"] != b"1"
        or records["GNU.sparse.minor"] != b"0"
    ):
        raise UnsafeArchive("the archive holds a GNU sparse file in a format other than 1.0")
    if "GNU.sparse.name" in records and "path" in records:
        raise UnsafeArchive("a pax header names its member twice (path and GNU.sparse.name)")
    for keyword in ("path", "linkpath", "GNU.sparse.name"):
        value = records.get(keyword)
        if value is not None and (not value or b"\0" in value):
            raise UnsafeArchive(f"a pax {keyword} is empty or holds a NUL byte")


def _decimal(value: bytes, what: str) -> int:
    if not value.isdigit() or len(value) > 20:
        raise CorruptArchive(f"a pax {what} is not a number")
    return int(value)


@dataclass
class _Pending:
    """What extended headers said about the next member."""

    pax: dict[str, bytes] | None = None
    long_name: bytes | None = None
    long_link: bytes | None = None

    def empty(self) -> bool:
        return self.pax is None and self.long_name is None and self.long_link is None


def members(stream: Stream) -> Iterator[Member]:
    """The members of a tar stream in order, until its end-of-archive block (a stream
    without one is refused as truncated); raises ``UnsafeArchive`` or ``CorruptArchive``."""
    reader, pending = _Reader(stream), _Pending()
    while True:
        offset = reader.offset
        block = stream.read(BLOCK)
        if not block:
            raise CorruptArchive("the tar stream ends without its end-of-archive block")
        if len(block) < BLOCK:
            block += reader.exact(BLOCK - len(block))
        if block == bytes(BLOCK):
            break  # GNU tar stops at the first zero block too
        if not _checksum_ok(block):
            raise CorruptArchive(
                f"the tar header at byte {offset} has a bad checksum (tar would skip to the "
                "next header it finds, perhaps one hidden in a file's contents)"
            )
        found = _header(reader, block, pending)
        if found is not None:
            yield found
            pending = _Pending()
    if not pending.empty():
        raise CorruptArchive("the tar stream ends after an extended header")


def _header(reader: _Reader, block: bytes, pending: _Pending) -> Member | None:
    """The member a header block describes, or None after recording an extended header."""
    kind_flag = block[156:157]
    size = _number(block[124:136], "size")
    if kind_flag in (b"x", b"L", b"K"):
        _extended(reader, kind_flag, size, pending)
        return None
    magic = block[257:265]
    if magic not in (_POSIX_MAGIC, _GNU_MAGIC):
        raise UnsafeArchive("the archive has a tar header of an old or unknown format")
    name = _nts(block[0:100])
    prefix = _nts(block[345:500])
    if magic == _POSIX_MAGIC and prefix:
        name = prefix + b"/" + name
    return _member(reader, block, kind_flag, size, name, pending)


def _extended(reader: _Reader, kind_flag: bytes, size: int, pending: _Pending) -> None:
    if size > MAX_EXTENDED:
        raise UnsafeArchive(
            f"the archive has an extended header of {size} bytes (at most {MAX_EXTENDED})"
        )
    data = reader.exact(size)
    reader.skip(_padded(size) - size)
    if kind_flag == b"x":
        if pending.pax is not None:
            raise UnsafeArchive("the archive has two pax headers for one member")
        pending.pax = _pax_records(data)
        _check_pax(pending.pax)
    elif kind_flag == b"L":
        if pending.long_name is not None:
            raise UnsafeArchive("the archive has two long names for one member")
        pending.long_name = _nts(data)
    else:
        if pending.long_link is not None:
            raise UnsafeArchive("the archive has two long link names for one member")
        pending.long_link = _nts(data)


def _member(
    reader: _Reader, block: bytes, kind_flag: bytes, size: int, name: bytes, pending: _Pending
) -> Member:
    pax = pending.pax or {}
    if pending.long_name is not None and ("path" in pax or "GNU.sparse.name" in pax):
        raise UnsafeArchive("a member has both a GNU long name and a pax path")
    if pending.long_link is not None and "linkpath" in pax:
        raise UnsafeArchive("a member has both a GNU long link name and a pax linkpath")
    name = pax.get("GNU.sparse.name") or pax.get("path") or pending.long_name or name
    link = pax.get("linkpath") or pending.long_link or _nts(block[157:257])
    if "size" in pax:
        size = _decimal(pax["size"], "size")
    if kind_flag in _REFUSED_KINDS:
        raise UnsafeArchive(
            f"member {shown(_text(name))} is {_REFUSED_KINDS[kind_flag]}; a volume archive "
            "may hold only files, directories and links"
        )
    kind = _KINDS.get(kind_flag)
    if kind is None:
        raise UnsafeArchive(f"member {shown(_text(name))} has an unsupported type {kind_flag!r}")
    if kind != FILE and size:
        raise UnsafeArchive(f"member {shown(_text(name))} is not a file but carries data")
    if kind == FILE and name.endswith(b"/"):
        raise UnsafeArchive(f"file member {shown(_text(name))} has a name ending in '/'")
    apparent = size
    if "GNU.sparse.name" in pax:
        if kind != FILE:
            raise UnsafeArchive(f"sparse member {shown(_text(name))} is not a file")
        apparent = _decimal(pax["GNU.sparse.realsize"], "sparse size")
        _skip_sparse(reader, size, apparent)
    else:
        reader.skip(_padded(size))
    return Member(_text(name), kind, _text(link), apparent)


def _skip_sparse(reader: _Reader, size: int, real_size: int) -> None:
    """Read a sparse 1.0 member's map (decimal lines at the start of its data) and skip the
    data; the map must add up to the member's size, as tar reads exactly that much."""
    numbers = _SparseMap(reader, size)
    count = numbers.next()
    if count > MAX_SPARSE_REGIONS:
        raise UnsafeArchive(f"a sparse file has {count} regions (at most {MAX_SPARSE_REGIONS})")
    stored, end = 0, 0
    for _ in range(count):
        offset, length = numbers.next(), numbers.next()
        if offset < end or offset + length > real_size:
            raise UnsafeArchive("a sparse file's map is out of order or beyond its size")
        stored, end = stored + length, offset + length
    read = numbers.consumed()
    if read + stored != size:
        raise UnsafeArchive("a sparse file's map does not match the data it carries")
    reader.skip(_padded(size) - read)


class _SparseMap:
    """Decimal numbers, one per line, read a block at a time from a member's data."""

    def __init__(self, reader: _Reader, size: int) -> None:
        self.reader, self.left = reader, _padded(size)
        self.buffer = b""
        self.blocks = 0

    def next(self) -> int:
        while b"\n" not in self.buffer:
            if self.left <= 0 or len(self.buffer) > 40:
                raise UnsafeArchive("a sparse file's map is malformed")
            self.buffer += self.reader.exact(BLOCK)
            self.left -= BLOCK
            self.blocks += 1
        line, _, self.buffer = self.buffer.partition(b"\n")
        return _decimal(line, "sparse map entry")

    def consumed(self) -> int:
        return self.blocks * BLOCK
