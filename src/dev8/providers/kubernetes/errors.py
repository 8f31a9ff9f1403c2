"""API failures mapped to dev8's errors, at the provider boundary, with one-line messages."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from dev8.core.errors import Dev8Error, EngineUnavailable, ProviderError
from dev8.providers.errors import mapped_errors


def _api_error(exc: Exception) -> Dev8Error | None:
    if isinstance(exc, ApiException):
        return refused(exc)
    if isinstance(exc, (HTTPError, ConnectionError, OSError)):
        return EngineUnavailable(f"lost the Kubernetes API: {exc}")
    return None


# Map API failures that escape a provider method to dev8 errors (the cause kept).
api_errors = mapped_errors(_api_error)


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
