"""`dev8 image build --push` against a real registry: Debian's docker-registry (the CNCF
distribution registry) on 127.0.0.1, with basic authentication, its storage in a temporary
directory. The engine pushes to it over plain HTTP, which it allows for 127.0.0.0/8 without
configuration. The build itself is the engine's cache of the image the session built."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest

from dev8 import __version__
from dev8.core.images import short_image_id
from tests.net import free_port

USER, PASSWORD = "pusher", "correct horse battery staple"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json"
)


@dataclass
class LocalRegistry:
    address: str  # 127.0.0.1:PORT

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(
            f"http://{self.address}{path}", auth=(USER, PASSWORD), headers=headers, timeout=10
        )


def bcrypt_line(user: str, password: str) -> str:
    """An htpasswd line (the registry reads bcrypt only), made with the C library's crypt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # the standard library's until 3.13; enough for a test's one password

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
    if not hashed or not hashed.startswith("$2"):
        pytest.skip("this C library's crypt() makes no bcrypt hashes")
    return f"{user}:{hashed}\n"


def registry_config(port: int, storage: Path, htpasswd: Path) -> str:
    return json.dumps(  # YAML is a superset of JSON
        {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(storage)}},
            "http": {"addr": f"127.0.0.1:{port}", "secret": "test-only"},
            "auth": {"htpasswd": {"realm": "dev8-test", "path": str(htpasswd)}},
        }
    )


def wait_answering(address: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"docker-registry exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://{address}/v2/", timeout=1).status_code == 401:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"docker-registry did not answer on {address} within 30 s")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("no docker-registry (Debian's package; scripts/test-tools.sh installs it)")
    folder = tmp_path_factory.mktemp("registry")
    (folder / "htpasswd").write_text(bcrypt_line(USER, PASSWORD))
    port = free_port()
    config = folder / "config.yml"
    config.write_text(registry_config(port, folder / "storage", folder / "htpasswd"))
    log = folder / "registry.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_answering(f"127.0.0.1:{port}", process, log)
        yield LocalRegistry(f"127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def untag_after(client: docker.DockerClient) -> Iterator[list[str]]:
    """Names a test gave the workspace image in the test registry: removed afterwards (the
    image itself stays)."""
    names: list[str] = []
    yield names
    for image in client.images.list():
        for tag in image.tags:
            if any(tag.startswith(f"{name}/") for name in names):
                client.images.remove(tag, noprune=True)


def push(dev8, registry: str, docker_config: Path) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, with a Docker config of its own (a push of 2 GB may take
    minutes on a busy machine: longer than the `dev8` fixture waits)."""
    return subprocess.run(
        [sys.executable, "-m", "dev8", "image", "build", "--push", registry],
        capture_output=True,
        text=True,
        env={**dev8.env, "DOCKER_CONFIG": str(docker_config)},
        timeout=550,
    )


def log_in(docker_config: Path, address: str) -> None:
    """What `docker login ADDRESS` writes (without a credential helper)."""
    docker_config.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {address: {"auth": token}}}))


def test_push_needs_a_login_then_puts_the_image_in_the_registry(
    dev8, registry: LocalRegistry, client, workspace_image, untag_after, tmp_path
):
    target = f"{registry.address}/team"
    untag_after.append(registry.address)
    docker_config = tmp_path / "docker-config"

    refused = push(dev8, target, docker_config)
    assert refused.returncode == 1, refused.stderr
    [line] = [text for text in refused.stderr.splitlines() if text.startswith("error:")]
    assert f"run `docker login {registry.address}`" in line
    assert not [tag for tag in client.images.get(workspace_image).tags if target in tag]

    log_in(docker_config, registry.address)
    result = push(dev8, target, docker_config)
    assert result.returncode == 0, result.stdout + result.stderr
    tag = f"{__version__}-{short_image_id(workspace_image)}"
    reference = f"{target}/dev8-workspace:{tag}"
    assert f"Nodes pull it as {reference}:" in result.stdout

    assert registry.get("/v2/_catalog").json()["repositories"] == ["team/dev8-workspace"]
    tags = registry.get("/v2/team/dev8-workspace/tags/list").json()["tags"]
    assert sorted(tags) == sorted([tag, "latest"])
    for pushed in (tag, "latest"):
        manifest = registry.get(
            f"/v2/team/dev8-workspace/manifests/{pushed}", Accept=MANIFEST_TYPES
        )
        assert manifest.status_code == 200
        digest = manifest.headers["Docker-Content-Digest"]
        assert (
            f"{target}/dev8-workspace@{digest}" in client.images.get(reference).attrs["RepoDigests"]
        )
        assert f"({digest})" in result.stdout.replace("\n", "")
    assert client.images.get(reference).id == workspace_image


def test_a_registry_that_does_not_answer_is_one_line_and_exit_1(
    dev8, client, workspace_image, untag_after, tmp_path
):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    untag_after.append(address)
    result = push(dev8, address, tmp_path / "docker-config")
    assert result.returncode == 1
    errors = [text for text in result.stderr.splitlines() if text.startswith("error:")]
    assert errors == [
        f"error: registry {address} does not answer the Docker engine: is it running, and "
        f'reachable from the engine\'s host? (Get "http://{address}/v2/": dial tcp {address}: '
        "connect: connection refused)"
    ]
    assert "Traceback" not in result.stderr
    assert not [tag for tag in client.images.get(workspace_image).tags if address in tag]


def test_a_bad_registry_is_refused_before_any_build(dev8, tmp_path):
    result = push(dev8, "localhost:5000/Team", tmp_path / "docker-config")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: --push localhost:5000/Team: 'Team' is not a valid path component: lowercase "
        "letters and digits, with '.', '_' or '-' between them"
    ]
    assert "Built" not in result.stdout
    assert not (dev8.data / "logs" / "image-build.log").exists()
