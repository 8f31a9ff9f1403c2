"""Looking inside volumes from tests: generate a tricky tree, list every entry exactly."""

from __future__ import annotations

import json

import docker

from dev8.core.images import helper_image
from dev8.core.naming import LABEL_OWNER
from tests.integration.conftest import OWNER

# Every entry under a root: type and mode bits, owner, times, link target, content hash,
# allocated blocks (holes of sparse files) and which names share an inode (hard links).
LISTING = r"""
import hashlib, json, os, stat, sys
root = sys.argv[1]
found, inodes = {}, {}
def record(path, rel):
    info = os.lstat(path)
    entry = {"mode": info.st_mode, "uid": info.st_uid, "gid": info.st_gid,
             "mtime_ns": info.st_mtime_ns}
    if stat.S_ISLNK(info.st_mode):
        entry["link"] = os.readlink(path)
    elif stat.S_ISREG(info.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        entry.update(size=info.st_size, sha256=digest.hexdigest(),
                     sparse=info.st_blocks * 512 < info.st_size)
        if info.st_nlink > 1:
            inodes.setdefault(info.st_ino, []).append(rel)
    found[rel] = entry
record(root, ".")
for directory, dirs, files in os.walk(root):
    if directory == root:
        dirs[:] = [d for d in dirs if d != ".dev8-restore"]
    for name in dirs + files:
        path = os.path.join(directory, name)
        record(path, os.path.relpath(path, root))
for names in inodes.values():
    for name in names:
        found[name]["linked_with"] = sorted(names)
print(json.dumps(found, sort_keys=True))
"""

# Files of many sizes; names with spaces, unicode and a newline; relative, absolute and
# dangling symbolic links; hard links across directories; empty directories; a sparse
# file; executable, private and setgid modes; nanosecond times; dev8 and root owners.
GENERATE = r"""
import os, sys
root = sys.argv[1]
def write(rel, data, mode=0o644, uid=1000):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    os.chown(path, uid, uid)
seed = bytes(range(256)) * 4096
for size in (0, 1, 511, 512, 4095, 4096, 65537, 1048579):
    write(f"sizes/file-{size}.bin", (seed * (size // len(seed) + 1))[:size])
write("sizes/random-3MiB.bin", os.urandom(3 * 1048576))
write("names/with space.txt", b"space\n")
write("names/ünïcödé 名前.txt", b"unicode\n")
write("names/new\nline.txt", b"newline\n")
write("names/tab\tand 'quotes\".txt", b"quotes\n")
write("names/" + "long" * 60 + ".txt", b"long\n")
write("deep/" + "/".join(f"level{i}" for i in range(30)) + "/bottom.txt", b"deep\n")
write("bin/run.sh", b"#!/bin/sh\necho hi\n", 0o755)
write("private/id_ed25519", b"secret-ish\n", 0o600)
write("root-owned.conf", b"root\n", 0o644, uid=0)
os.symlink("../sizes/file-1.bin", os.path.join(root, "names/relative-link"))
os.symlink("/workspace/sizes/file-512.bin", os.path.join(root, "absolute-link"))
os.symlink("does/not/exist", os.path.join(root, "dangling-link"))
os.symlink("deep", os.path.join(root, "dir-link"))
os.link(os.path.join(root, "sizes/file-4096.bin"), os.path.join(root, "names/hard-link"))
os.link(os.path.join(root, "sizes/file-4096.bin"), os.path.join(root, "deep/hard-link-2"))
for rel in ("empty", "empty/nested/deeper", "setgid"):
    os.makedirs(os.path.join(root, rel), exist_ok=True)
os.chmod(os.path.join(root, "setgid"), 0o2775)
with open(os.path.join(root, "sparse.img"), "wb") as handle:
    handle.truncate(64 * 1048576)
    handle.seek(32 * 1048576)
    handle.write(b"data in the middle")
for directory, dirs, files in os.walk(root, topdown=False):
    for name in dirs + files + ["."]:
        path = os.path.join(directory, name)
        os.lchown(path, *(0, 0) if name == "root-owned.conf" else (1000, 1000))
        os.utime(path, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789),
                 follow_symlinks=False)
os.utime(root, ns=(1_600_000_001_000_000_001, 1_600_000_001_000_000_001))
"""


def run_python(
    client: docker.DockerClient, volume: str, program: str, *args: str, read_only: bool = True
) -> bytes:
    return client.containers.run(
        helper_image(),
        ["python3", "-c", program, "/v", *args],
        volumes={volume: {"bind": "/v", "mode": "ro" if read_only else "rw"}},
        labels={LABEL_OWNER: OWNER},
        network_mode="none",
        remove=True,
    )


def listing(client: docker.DockerClient, volume: str) -> dict:
    return json.loads(run_python(client, volume, LISTING))


def generate(client: docker.DockerClient, volume: str) -> None:
    run_python(client, volume, GENERATE, read_only=False)


def shell(client: docker.DockerClient, volume: str, script: str, mount: str = "/v") -> bytes:
    return client.containers.run(
        helper_image(),
        ["bash", "-c", script],
        volumes={volume: {"bind": mount, "mode": "rw"}},
        labels={LABEL_OWNER: OWNER},
        network_mode="none",
        remove=True,
    )
