"""One error hierarchy for every user-facing failure.

Each error carries a stable ``code`` (used by the REST API and the SDK to re-raise the same
class) and a one-line message that says what happened and what to do next.
"""

from __future__ import annotations


class Dev8Error(Exception):
    """Root of every error dev8 reports to a user."""

    code = "error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(Dev8Error):
    code = "invalid_input"
    http_status = 422


class Unauthorized(Dev8Error):
    """No credentials, or credentials the server does not accept (unknown, expired, revoked)."""

    code = "unauthorized"
    http_status = 401


class Forbidden(Dev8Error):
    """Authenticated, but the role does not allow this. Another user's workspace is a
    ``NotFound`` instead, so that its existence is not revealed."""

    code = "forbidden"
    http_status = 403


class NotFound(Dev8Error):
    code = "not_found"
    http_status = 404


class AlreadyExists(Dev8Error):
    code = "already_exists"
    http_status = 409


class Conflict(Dev8Error):
    """The request is valid but clashes with the current state (busy, port taken...)."""

    code = "conflict"
    http_status = 409


class MethodNotAllowed(Dev8Error):
    code = "method_not_allowed"
    http_status = 405


class EngineUnavailable(Dev8Error):
    code = "engine_unavailable"
    http_status = 503


class ServerUnavailable(Dev8Error):
    """The dev8 server could not be reached (server mode)."""

    code = "server_unavailable"
    http_status = 503


class ImageNotFound(NotFound):
    code = "image_not_found"


class ImageBuildFailed(Dev8Error):
    code = "image_build_failed"


class ProviderError(Dev8Error):
    """The backend refused or failed an operation."""

    code = "provider_error"
    http_status = 502


class OperationTimeout(Dev8Error):
    code = "timeout"
    http_status = 504


class UnsafeArchive(InvalidInput):
    """An archive that could write outside its volume, or holds what a volume must not."""

    code = "unsafe_archive"


class CorruptArchive(InvalidInput):
    """An archive that cannot be read to the end, or whose checksum does not match."""

    code = "corrupt_archive"


ERRORS_BY_CODE: dict[str, type[Dev8Error]] = {
    cls.code: cls
    for cls in (
        Dev8Error,
        InvalidInput,
        Unauthorized,
        Forbidden,
        NotFound,
        AlreadyExists,
        Conflict,
        MethodNotAllowed,
        EngineUnavailable,
        ServerUnavailable,
        ImageNotFound,
        ImageBuildFailed,
        ProviderError,
        OperationTimeout,
        UnsafeArchive,
        CorruptArchive,
    )
}
