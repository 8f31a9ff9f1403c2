"""Hashing an archive while another process writes it."""

import hashlib
import threading
import time

import pytest

from dev8.backup.hashing import GrowingFileHasher, append_and_hash
from dev8.core.errors import ProviderError


def test_the_hash_of_a_file_written_meanwhile_and_its_trailer(tmp_path):
    path = tmp_path / "archive"
    path.write_bytes(b"")
    parts = [b"a" * 3_000_000, b"b" * 10, b"c" * 1_500_000]

    def write() -> None:
        with path.open("ab") as handle:
            for part in parts:
                handle.write(part)
                handle.flush()
                time.sleep(0.06)

    with GrowingFileHasher(path) as hasher:
        writer = threading.Thread(target=write)
        writer.start()
        writer.join()
        sha256, size = hasher.finish()
    data = b"".join(parts)
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    whole = append_and_hash(path, hasher, b"trailer")
    assert whole == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_that_cannot_be_read_is_a_provider_error(tmp_path):
    with GrowingFileHasher(tmp_path / "missing") as hasher:
        pass
    with pytest.raises(ProviderError, match="cannot read back"):
        hasher.finish()
