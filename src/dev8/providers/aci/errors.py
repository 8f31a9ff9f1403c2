"""Azure's failures mapped to dev8's errors, at the provider boundary, with one-line messages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from dev8.core.errors import Dev8Error, EngineUnavailable, ImageNotFound, ProviderError

F = TypeVar("F", bound=Callable[..., Any])
# What ACI answers when the image cannot be pulled (a wrong reference, no credentials).
IMAGE_ERRORS = frozenset({"InaccessibleImage", "RegistryErrorResponse", "InvalidImage"})


def azure_errors(method: F) -> F:
    """Map Azure failures that escape ``method`` to dev8 errors (the cause kept)."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Dev8Error:
            raise
        except ClientAuthenticationError as exc:
            raise ProviderError(
                f"Azure refused dev8's credentials: {first_line(exc.message)}; see the "
                "identity section of docs/azure.md"
            ) from exc
        except HttpResponseError as exc:
            raise refused(exc) from exc
        except (ServiceRequestError, ServiceResponseError, OSError) as exc:
            raise EngineUnavailable(f"lost Azure Resource Manager: {first_line(str(exc))}") from exc

    return cast(F, wrapper)


def refused(exc: HttpResponseError) -> Dev8Error:
    code = error_code(exc)
    if code in IMAGE_ERRORS:
        return ImageNotFound(f"Azure cannot pull the workspace's image: {first_line(exc.message)}")
    if exc.status_code in (401, 403):
        return ProviderError(
            f"Azure refused dev8's identity ({exc.status_code} {code}): "
            f"{first_line(exc.message)}; see the roles in docs/azure.md"
        )
    return ProviderError(f"Azure refused ({exc.status_code} {code}): {first_line(exc.message)}")


def error_code(exc: HttpResponseError) -> str:
    return str(getattr(exc.error, "code", None) or exc.reason or "")


def first_line(text: str | None) -> str:
    lines = str(text or "").strip().splitlines()
    # azure-core puts "(Code) message" first, then "Code: ..." and "Message: ..." lines.
    return lines[0][:300] if lines else "no reason given"
