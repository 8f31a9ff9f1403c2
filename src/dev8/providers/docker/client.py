"""Connecting to the Docker engine, with engine failures mapped to dev8 errors."""

from __future__ import annotations

import docker
from docker.errors import DockerException

from dev8.core.errors import EngineUnavailable

ENGINE_HINT = "run `dev8 engine ensure` (as root on Debian/Ubuntu) or start Docker"


def connect(timeout: int = 120) -> docker.DockerClient:
    """A client for the engine named by ``DOCKER_HOST`` (default: the local socket).

    The API version is negotiated so that a newer client library works with an older engine.
    """
    try:
        client = docker.DockerClient.from_env(version="auto", timeout=timeout)
        client.ping()
    except DockerException as exc:
        raise EngineUnavailable(f"the Docker engine is not reachable; {ENGINE_HINT}") from exc
    return client


def engine_answers() -> bool:
    try:
        connect(timeout=5).close()
    except EngineUnavailable:
        return False
    return True
