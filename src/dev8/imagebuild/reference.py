"""Where ``dev8 image build --push REGISTRY`` puts an image, and under which names. Pure: the
registry is checked here before anything is built, the engine is asked nothing.

The grammar is the one the engine applies (distribution's ``reference`` package): a registry
host with an optional port, then lowercase path components. Unlike the engine, a first
component that does not look like a host (no ``.``, no ``:``, not ``localhost``) is refused
rather than read as a Docker Hub account, so that ``--push team`` cannot push to the public
Hub by surprise; Docker Hub is named explicitly: ``docker.io/USER``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dev8.core.errors import InvalidInput
from dev8.core.images import short_image_id

_HOST = re.compile(
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_NOT_IN_TAG = re.compile(r"[^\w.-]")
_NAME_MAX = 255  # the engine's limit for a repository name, registry included
EXAMPLE = "registry.example.com:5000/team"


@dataclass(frozen=True)
class Registry:
    """A registry and the path under which dev8's images go (``host[:port][/path]``)."""

    host: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.host}/{self.path}" if self.path else self.host

    def repository(self, layer_repository: str) -> str:
        """Where a layer's image goes: ``dev8/workspace`` becomes ``REGISTRY/dev8-workspace``
        (one component per image, whatever path the registry was given)."""
        return f"{self}/{layer_repository.replace('/', '-')}"


def parse_registry(text: str) -> Registry:
    """``text`` as a registry to push to, or ``InvalidInput`` saying what is wrong with it."""
    given = text.strip()
    if "://" in given:
        raise InvalidInput(f"--push takes a registry without a scheme, e.g. {EXAMPLE}")
    given = given.rstrip("/")
    if not given:
        raise InvalidInput(f"--push needs a registry, e.g. {EXAMPLE}")
    host, _, path = given.partition("/")
    _check_host(host)
    if "@" in path or ":" in path:
        raise InvalidInput(
            f"--push {given}: give the registry without a tag or digest; "
            "the tag is the build's (its version and image id)"
        )
    for component in path.split("/") if path else []:
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidInput(
                f"--push {given}: {component!r} is not a valid path component: lowercase "
                "letters and digits, with '.', '_' or '-' between them"
            )
    registry = Registry(host, path)
    if len(registry.repository("dev8/workspace")) > _NAME_MAX:
        raise InvalidInput(f"--push {given}: the repository name would exceed {_NAME_MAX} chars")
    return registry


def _check_host(host: str) -> None:
    if not ("." in host or ":" in host or host == "localhost"):
        raise InvalidInput(
            f"--push: {host!r} is not a registry host; start with one, e.g. {EXAMPLE} "
            "(Docker Hub: docker.io/USER)"
        )
    match = _HOST.fullmatch(host)
    if match is None:
        raise InvalidInput(f"--push: {host!r} is not a registry host[:port], e.g. {EXAMPLE}")
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise InvalidInput(f"--push: port {port} of {host!r} is not a port (1-65535)")


def content_tag(version: str, image_id: str) -> str:
    """The tag that names one build: dev8's version and the image's id (``0.1.0-7c888219b45d``).
    Another build gets another tag, so nodes never run a stale image they cached under it."""
    return f"{_NOT_IN_TAG.sub('-', version)}-{short_image_id(image_id)}"


def push_tags(version: str, image_id: str, channel: str) -> tuple[str, str]:
    """The tags pushed: the build's own (the one to deploy) and the moving ``channel`` tag
    the layers are built under (``latest``, or ``DEV8_IMAGE_TAG``)."""
    return content_tag(version, image_id), channel
