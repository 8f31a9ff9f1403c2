"""Engine failures mapped to dev8's errors, at the provider boundary, with one-line messages."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from docker.errors import APIError, DockerException

from dev8.core.errors import Conflict, Dev8Error, EngineUnavailable, ProviderError

F = TypeVar("F", bound=Callable[..., Any])
PORT_TAKEN = ("port is already allocated", "address already in use")


def engine_errors(method: F) -> F:
    """Map engine failures that escape ``method`` to dev8 errors (the cause kept)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Dev8Error:
            raise
        except APIError as exc:
            raise ProviderError(f"the Docker engine refused: {explain(exc)}") from exc
        except (DockerException, ConnectionError, OSError) as exc:
            raise EngineUnavailable(f"lost the Docker engine: {exc}") from exc

    return cast(F, wrapper)


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
