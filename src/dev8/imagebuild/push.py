"""``dev8 image build --push``: tag the built image for a registry and push it with the engine.

The engine does the push, with the credentials the docker SDK reads from the Docker config
(``docker login REGISTRY`` puts them there), so the registry must be reachable from the
engine's host. ``PushTally`` reads the engine's progress stream and ``push_error`` what its
failures mean; both are pure.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dev8.core.errors import Dev8Error, ImageBuildFailed
from dev8.imagebuild.reference import Registry, push_tags

if TYPE_CHECKING:
    import docker

DONE = ("Pushed", "Layer already exists", "Mounted from")
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "no route to host",
    "network is unreachable",
    "connection reset",
    "dial tcp",
)
_NEEDS_LOGIN = ("unauthorized", "authentication required", "no basic auth credentials", "denied")


@dataclass
class PushTally:
    """What the engine's push stream said so far, fed one decoded chunk at a time."""

    registry: Registry
    reference: str
    layers: dict[str, str] = field(default_factory=dict)  # layer id -> its last status
    sent: dict[str, int] = field(default_factory=dict)  # layer id -> bytes read so far
    digest: str = ""

    def feed(self, chunk: Mapping[str, Any]) -> None:
        if chunk.get("error") or chunk.get("errorDetail"):
            detail = chunk.get("errorDetail") or {}
            raise push_error(self.registry, self.reference, detail.get("message") or chunk["error"])
        layer, status = chunk.get("id"), chunk.get("status") or ""
        if layer and status and not status.startswith("The push refers"):
            self.layers[layer] = status
            current = (chunk.get("progressDetail") or {}).get("current")
            if isinstance(current, int):
                self.sent[layer] = current
        digest = (chunk.get("aux") or {}).get("Digest")
        if digest:
            self.digest = digest

    @property
    def done(self) -> int:
        return sum(status.startswith(DONE) for status in self.layers.values())

    @property
    def uploaded(self) -> int:
        return sum(status == "Pushed" for status in self.layers.values())

    @property
    def bytes_sent(self) -> int:
        return sum(self.sent.values())


@dataclass(frozen=True)
class PushedTag:
    reference: str
    digest: str
    layers: int
    uploaded: int  # the others were in the registry already
    seconds: float

    @property
    def pinned(self) -> str:
        """The reference with its digest: what exactly was pushed, whatever the tag becomes."""
        return f"{self.reference}@{self.digest}"


class PushProgress:
    """Callbacks the CLI implements to show a push."""

    def tag_started(self, reference: str) -> None: ...
    def update(self, tally: PushTally) -> None: ...
    def tag_finished(self, pushed: PushedTag) -> None: ...


def push_error(registry: Registry, reference: str, message: str) -> Dev8Error:
    """The engine's error ``message`` as one line that says what to do."""
    detail = (message.strip().splitlines() or ["no reason given"])[0][:300]
    lowered = detail.lower()
    host = registry.host
    if "http response to https client" in lowered:
        return ImageBuildFailed(
            f"registry {host} speaks plain HTTP: list it in the engine's insecure-registries "
            f"(/etc/docker/daemon.json) or give it TLS ({detail})"
        )
    if "x509" in lowered or "certificate" in lowered:
        return ImageBuildFailed(
            f"the Docker engine does not trust registry {host}'s certificate: put its CA in "
            f"/etc/docker/certs.d/{host}/ca.crt ({detail})"
        )
    if any(word in lowered for word in _NEEDS_LOGIN):
        return ImageBuildFailed(
            f"registry {host} refused the push of {reference}: authentication required; run "
            f"`docker login {host}` (dev8 pushes with the Docker config's credentials) with "
            f"an account allowed to push there ({detail})"
        )
    if any(word in lowered for word in _UNREACHABLE):
        return ImageBuildFailed(
            f"registry {host} does not answer the Docker engine: is it running, and reachable "
            f"from the engine's host? ({detail})"
        )
    return ImageBuildFailed(f"pushing {reference} failed: {detail}")


def push_image(
    client: docker.DockerClient,
    *,
    image_id: str,
    layer_repository: str,
    registry: Registry,
    version: str,
    channel: str,
    progress: PushProgress,
) -> list[PushedTag]:
    """Tag ``image_id`` in ``registry`` under the build's own tag and ``channel``, and push
    both. The first tag is the one to deploy."""
    repository = registry.repository(layer_repository)
    image = client.images.get(image_id)
    references = [f"{repository}:{tag}" for tag in push_tags(version, image_id, channel)]
    made = []
    pushed = []
    try:
        for reference in references:
            if reference not in image.tags:
                image.tag(repository, reference.rpartition(":")[2])
                made.append(reference)
            pushed.append(_push_tag(client, registry, reference, progress))
    except Dev8Error:
        for reference in made:  # a failed push leaves no new names behind
            client.images.remove(reference, noprune=True)
        raise
    return pushed


def _push_tag(
    client: docker.DockerClient,
    registry: Registry,
    reference: str,
    progress: PushProgress,
) -> PushedTag:
    from docker.errors import APIError

    repository, _, tag = reference.rpartition(":")
    tally = PushTally(registry, reference)
    progress.tag_started(reference)
    started = time.monotonic()
    try:
        for chunk in client.images.push(repository, tag=tag, stream=True, decode=True):
            tally.feed(chunk)
            progress.update(tally)
    except APIError as exc:
        raise push_error(registry, reference, str(exc.explanation or exc)) from exc
    if not tally.digest:
        raise ImageBuildFailed(f"pushing {reference}: the engine reported no digest")
    pushed = PushedTag(
        reference, tally.digest, len(tally.layers), tally.uploaded, time.monotonic() - started
    )
    progress.tag_finished(pushed)
    return pushed
