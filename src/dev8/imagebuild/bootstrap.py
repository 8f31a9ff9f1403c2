"""A Debian base image made with debootstrap, for machines that cannot pull from a registry."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
from docker.errors import ImageNotFound as DockerImageNotFound

from dev8.core.errors import ImageBuildFailed, InvalidInput
from dev8.hostpkg import Report, apt_install
from dev8.imagebuild.apt_sources import (
    AptSource,
    mirror_for,
    parse_deb822_sources,
    parse_one_line_sources,
    render_debian_sources,
)
from dev8.paths import cache_dir

DEFAULT_SUITE = "bookworm"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def bootstrap_tag(suite: str) -> str:
    return f"dev8/bootstrap:{suite}"


def host_apt_sources(root: Path = Path("/etc/apt")) -> list[AptSource]:
    sources: list[AptSource] = []
    one_line = [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            sources += parse_one_line_sources(path.read_text(errors="replace"))
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        sources += parse_deb822_sources(path.read_text(errors="replace"))
    return sources


def find_image(client: docker.DockerClient, reference: str) -> str | None:
    """The id of a local image, or None."""
    try:
        return client.images.get(reference).id
    except DockerImageNotFound:
        return None


def bootstrap_base(
    client: docker.DockerClient,
    report: Report,
    suite: str = DEFAULT_SUITE,
    mirror: str | None = None,
) -> str:
    """Return the tag of a debootstrapped ``suite`` image, creating it once (then cached)."""
    tag = bootstrap_tag(suite)
    if find_image(client, tag):
        report(f"using the cached bootstrapped base {tag}")
        return tag
    sources = host_apt_sources()
    mirror = mirror or mirror_for(sources, suite)
    if not mirror:
        raise InvalidInput(
            f"no Debian mirror for {suite} in the host's apt sources; pass --mirror URL"
        )
    if not shutil.which("debootstrap"):
        apt_install(["debootstrap"], report, ImageBuildFailed)
    with tempfile.TemporaryDirectory(prefix="bootstrap-", dir=cache_dir()) as tmp:
        rootfs = Path(tmp) / "rootfs"
        _debootstrap(suite, mirror, rootfs, report)
        _configure_rootfs(rootfs, mirror, mirror_for(sources, f"{suite}-security"), suite)
        archive = Path(tmp) / "rootfs.tar"
        report("packing the root filesystem")
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."], report)
        report(f"importing it as {tag}")
        client.api.import_image(
            src=str(archive),
            repository=tag.split(":")[0],
            tag=suite,
            changes=[
                'CMD ["/bin/bash"]',
                f"LABEL dev.dev8.bootstrap={suite}",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ],
        )
    return tag


def _debootstrap(suite: str, mirror: str, rootfs: Path, report: Report) -> None:
    # The mirror is trusted only through its Release file's signature, checked against
    # Debian's archive keys; the Release then pins the hash of every package fetched.
    if not KEYRING.is_file():
        apt_install(["debian-archive-keyring"], report, ImageBuildFailed)
    report(f"bootstrapping Debian {suite} from {mirror} (about 30 s)")
    argv = ["debootstrap", "--variant=minbase", f"--keyring={KEYRING}", "--force-check-gpg"]
    _run([*argv, suite, str(rootfs), mirror], report)


def _configure_rootfs(rootfs: Path, mirror: str, security: str | None, suite: str) -> None:
    apt = rootfs / "etc" / "apt"
    (apt / "sources.list").unlink(missing_ok=True)
    (apt / "sources.list.d" / "debian.sources").write_text(
        render_debian_sources(mirror, security, suite)
    )
    shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    (rootfs / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True)
    for lists in (rootfs / "var" / "lib" / "apt" / "lists").glob("*_*"):
        lists.unlink()


def _run(argv: list[str], report: Report) -> None:
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert process.stdout is not None
    last = ""
    for line in process.stdout:
        last = line.strip() or last
        if line.startswith("I: Retrieving") or line.startswith("I: Installing core"):
            report(line.strip()[3:])
    if process.wait() != 0:
        raise ImageBuildFailed(f"{argv[0]} failed (exit {process.returncode}): {last}")
