"""Hashing an archive while a helper writes it, so a backup needs no second pass."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from dev8.core.errors import ProviderError

READ_SIZE = 1 << 20
POLL_S = 0.05


class GrowingFileHasher:
    """SHA-256 and size of a file that another process is still writing.

    Use as a context manager around the writing; ``finish`` (after the writer ended) reads
    what is left and returns ``(sha256 hex, size)``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hash-archive", daemon=True)

    def __enter__(self) -> GrowingFileHasher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            with self.path.open("rb") as handle:
                while True:
                    chunk = handle.read(READ_SIZE)
                    if chunk:
                        self.sha256.update(chunk)
                        self.size += len(chunk)
                    elif self._done.is_set():
                        return
                    else:
                        self._done.wait(POLL_S)
        except BaseException as exc:  # raised again by ``finish``, in the caller's thread
            self._error = exc

    def finish(self) -> tuple[str, int]:
        self.__exit__()
        if isinstance(self._error, OSError):
            raise ProviderError(f"cannot read back {self.path}: {self._error}") from self._error
        if self._error is not None:
            raise self._error
        return self.sha256.hexdigest(), self.size


def append_and_hash(path: Path, hasher: GrowingFileHasher, extra: bytes) -> str:
    """Append ``extra`` (the manifest trailer) to the hashed file, durably; the SHA-256 of
    the whole file, continued from the hash of what was there."""
    with path.open("ab") as handle:
        handle.write(extra)
        handle.flush()
        os.fsync(handle.fileno())
    whole = hasher.sha256.copy()
    whole.update(extra)
    return whole.hexdigest()
