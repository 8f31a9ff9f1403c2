"""Engine failures mapped to dev8's errors, at the provider boundary, with one-line messages."""

from __future__ import annotations

import re

from docker.errors import APIError, DockerException

from dev8.core.errors import Conflict, Dev8Error, EngineUnavailable, ProviderError
from dev8.providers.errors import mapped_errors

PORT_TAKEN = ("port is already allocated", "address already in use")


def _engine_error(exc: Exception) -> Dev8Error | None:
    if isinstance(exc, APIError):
        return ProviderError(f"the Docker engine refused: {explain(exc)}")
    if isinstance(exc, (DockerException, ConnectionError, OSError)):
        return EngineUnavailable(f"lost the Docker engine: {exc}")
    return None


# Map engine failures that escape a provider method to dev8 errors (the cause kept).
engine_errors = mapped_errors(_engine_error)


def explain(exc: APIError) -> str:
    explanation = exc.explanation or str(exc)
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation).strip().splitlines()[0]


def port_conflict(exc: APIError) -> Conflict | None:
    """The ``Conflict`` to raise when the engine refused because a host port is taken."""
    text = explain(exc)
    if not any(sign in text.lower() for sign in PORT_TAKEN):
        return None
    found = re.search(r"(\d+\.\d+\.\d+\.\d+):(\d+)", text)
    where = f"host port {found.group(2)} on {found.group(1)}" if found else "a host port"
    return Conflict(f"{where} is already in use by another program; choose a free one")
