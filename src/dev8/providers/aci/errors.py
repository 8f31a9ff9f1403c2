"""Azure's failures mapped to dev8's errors, at the provider boundary, with one-line messages."""

from __future__ import annotations

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from dev8.core.errors import Dev8Error, EngineUnavailable, ImageNotFound, ProviderError
from dev8.providers.errors import mapped_errors

# What ACI answers when the image cannot be pulled (a wrong reference, no credentials).
IMAGE_ERRORS = frozenset({"InaccessibleImage", "RegistryErrorResponse", "InvalidImage"})


def _azure_error(exc: Exception) -> Dev8Error | None:
    if isinstance(exc, ClientAuthenticationError):
        return ProviderError(
            f"Azure refused dev8's credentials: {first_line(exc.message)}; see the "
            "identity section of docs/azure.md"
        )
    if isinstance(exc, HttpResponseError):
        return refused(exc)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, OSError)):
        return EngineUnavailable(f"lost Azure Resource Manager: {first_line(str(exc))}")
    return None


# Map Azure failures that escape a provider method to dev8 errors (the cause kept).
azure_errors = mapped_errors(_azure_error)


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
