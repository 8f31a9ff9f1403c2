"""What this test session creates on the engine: every container, volume and image carries
the label ``dev.dev8.owner=OWNER`` and is removed by label at the end, whatever happened."""

from __future__ import annotations

import secrets

import docker

from dev8.core.naming import LABEL_OWNER
from dev8.providers.docker.volumes import remove_volume

OWNER = f"pytest-{secrets.token_hex(4)}"


def remove_owned(client: docker.DockerClient, owner: str) -> None:
    label = {"label": f"{LABEL_OWNER}={owner}"}
    for container in client.containers.list(all=True, filters=label):
        container.remove(force=True)
    for volume in client.volumes.list(filters=label):
        remove_volume(volume)
    for network in client.networks.list(filters=label):
        network.remove()
    for image in client.images.list(filters=label):
        client.images.remove(image.id, force=True)
