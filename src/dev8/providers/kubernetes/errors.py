"""API failures mapped to dev8's errors, at the provider boundary, with one-line messages."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from dev8.core.errors import Dev8Error, EngineUnavailable, ProviderError

F = TypeVar("F", bound=Callable[..., Any])


def api_errors(method: F) -> F:
    """Map API failures that escape ``method`` to dev8 errors (the cause kept)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Dev8Error:
            raise
        except ApiException as exc:
            raise refused(exc) from exc
        except (HTTPError, ConnectionError, OSError) as exc:
            raise EngineUnavailable(f"lost the Kubernetes API: {exc}") from exc

    return cast(F, wrapper)


def refused(exc: ApiException) -> Dev8Error:
    if exc.status in (401, 403):
        return ProviderError(
            f"the Kubernetes API refused dev8's account ({exc.status}): {explain(exc)}; "
            "see the RBAC section of docs/kubernetes.md"
        )
    return ProviderError(f"the Kubernetes API refused ({exc.status}): {explain(exc)}")


def explain(exc: ApiException) -> str:
    """The first line of the API's ``Status`` message, else the HTTP reason."""
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    text = str(message or exc.reason or "no reason given").strip()
    return text.splitlines()[0] if text else "no reason given"
