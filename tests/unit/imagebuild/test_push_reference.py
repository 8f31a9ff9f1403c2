"""Where `dev8 image build --push` puts an image, and what the engine's push stream means.
Pure: no engine, no registry."""

from __future__ import annotations

import pytest

from dev8.core.errors import ImageBuildFailed, InvalidInput
from dev8.imagebuild.push import PushTally, push_error
from dev8.imagebuild.reference import Registry, content_tag, parse_registry, push_tags

IMAGE_ID = "sha256:7c888219b45d0123456789abcdef0123456789abcdef0123456789abcdef0123"


@pytest.mark.parametrize(
    ("given", "host", "path"),
    [
        ("localhost:5000", "localhost:5000", ""),
        ("localhost", "localhost", ""),
        ("127.0.0.1:5000", "127.0.0.1:5000", ""),
        ("registry.example.com:5000/team", "registry.example.com:5000", "team"),
        ("registry.example.com/dev8/images/", "registry.example.com", "dev8/images"),
        ("  ghcr.io/my-org/sub_path.x  ", "ghcr.io", "my-org/sub_path.x"),
        ("docker.io/someone", "docker.io", "someone"),
        ("registry:5000/a__b", "registry:5000", "a__b"),
        ("Registry.Example.com/team", "Registry.Example.com", "team"),
    ],
)
def test_registries_are_host_and_path(given, host, path):
    assert parse_registry(given) == Registry(host, path)


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("", "needs a registry"),
        ("/", "needs a registry"),
        ("team", "'team' is not a registry host"),
        ("team/project", "'team' is not a registry host"),
        ("https://registry.example.com", "without a scheme"),
        ("localhost:5000/team:v1", "without a tag or digest"),
        ("localhost:5000/team@sha256:abc", "without a tag or digest"),
        ("localhost:5000/Team", "'Team' is not a valid path component"),
        ("localhost:5000/team//x", "'' is not a valid path component"),
        ("localhost:5000/-team", "'-team' is not a valid path component"),
        ("localhost:5000/team./x", "'team.' is not a valid path component"),
        ("localhost:port", "is not a registry host[:port]"),
        ("-bad.example.com", "is not a registry host[:port]"),
        ("bad_host.example.com", "is not a registry host[:port]"),
        ("localhost:0", "is not a port"),
        ("localhost:65536", "is not a port"),
        ("registry.example.com/" + "a" * 250, "would exceed 255"),
    ],
)
def test_invalid_registries_are_refused_with_one_line(given, said):
    with pytest.raises(InvalidInput) as caught:
        parse_registry(given)
    assert said in caught.value.message
    assert "\n" not in caught.value.message


def test_the_image_goes_in_one_component_under_the_registry():
    assert (
        Registry("registry.example.com:5000", "team").repository("dev8/workspace")
        == "registry.example.com:5000/team/dev8-workspace"
    )
    assert Registry("localhost:5000").repository("dev8/base") == "localhost:5000/dev8-base"
    assert str(Registry("localhost:5000", "a/b")) == "localhost:5000/a/b"


def test_the_build_tag_names_the_version_and_the_image():
    assert content_tag("0.1.0", IMAGE_ID) == "0.1.0-7c888219b45d"
    assert content_tag("0.2.0.dev3+g1a2b.dirty", "7c888219b45d99") == (
        "0.2.0.dev3-g1a2b.dirty-7c888219b45d"
    )
    assert push_tags("0.1.0", IMAGE_ID, "latest") == ("0.1.0-7c888219b45d", "latest")


def tally() -> PushTally:
    return PushTally(Registry("localhost:5000", "team"), "localhost:5000/team/dev8-workspace:t")


def test_the_tally_counts_layers_bytes_and_keeps_the_digest():
    """A stream as the engine (20.10) sends it, shortened."""
    seen = tally()
    chunks = [
        {"status": "The push refers to repository [localhost:5000/team/dev8-workspace]"},
        {"status": "Preparing", "progressDetail": {}, "id": "aaa"},
        {"status": "Preparing", "progressDetail": {}, "id": "bbb"},
        {"status": "Preparing", "progressDetail": {}, "id": "ccc"},
        {"status": "Waiting", "progressDetail": {}, "id": "ccc"},
        {"status": "Pushing", "progressDetail": {"current": 512, "total": 2048}, "id": "aaa"},
        {"status": "Layer already exists", "progressDetail": {}, "id": "bbb"},
        {"status": "Pushing", "progressDetail": {"current": 2048, "total": 2048}, "id": "aaa"},
        {"status": "Pushed", "progressDetail": {}, "id": "aaa"},
        {"status": "Mounted from team/other", "progressDetail": {}, "id": "ccc"},
        {"status": "t: digest: sha256:5f26 size: 3045"},
        {"progressDetail": {}, "aux": {"Tag": "t", "Digest": "sha256:5f26", "Size": 3045}},
    ]
    for chunk in chunks[:6]:
        seen.feed(chunk)
    assert (len(seen.layers), seen.done, seen.bytes_sent) == (3, 0, 512)
    for chunk in chunks[6:]:
        seen.feed(chunk)
    assert (len(seen.layers), seen.done, seen.uploaded) == (3, 3, 1)
    assert seen.bytes_sent == 2048
    assert seen.digest == "sha256:5f26"


def test_an_error_in_the_stream_is_raised_as_one_line():
    message = 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'
    with pytest.raises(ImageBuildFailed) as caught:
        tally().feed({"errorDetail": {"message": message}, "error": message})
    assert caught.value.message.startswith("registry localhost:5000 does not answer")
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("engine_says", "we_say"),
    [
        ("unauthorized: authentication required", "run `docker login localhost:5000`"),
        ("no basic auth credentials", "authentication required"),
        ("denied: requested access to the resource is denied", "`docker login localhost:5000`"),
        (
            'Get "https://localhost:5000/v2/": dial tcp: lookup localhost: no such host',
            "does not answer",
        ),
        (
            'Get "https://localhost:5000/v2/": http: server gave HTTP response to HTTPS client',
            "insecure-registries",
        ),
        (
            'Get "https://localhost:5000/v2/": x509: certificate signed by unknown authority',
            "/etc/docker/certs.d/localhost:5000/ca.crt",
        ),
        ("blob upload invalid\nmore detail", "pushing localhost:5000/team/x:t failed: blob"),
    ],
)
def test_push_errors_say_what_to_do(engine_says, we_say):
    error = push_error(Registry("localhost:5000", "team"), "localhost:5000/team/x:t", engine_says)
    assert isinstance(error, ImageBuildFailed)
    assert we_say in error.message
    assert "\n" not in error.message
