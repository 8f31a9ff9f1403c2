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


class PolicyRefused(Forbidden):
    """Beyond what the server's admin lets a member have or do (workspaces, CPUs, memory,
    quota, kept backups, images, host ports); the message names the limit and its setting."""

    code = "policy_refused"


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


class WorkspaceUnreachable(ProviderError):
    """The workspace runs, but its agent, or the port asked for inside it, does not answer."""

    code = "unreachable"


class Busy(Dev8Error):
    """Too much at once (e.g. relayed streams); retry shortly."""

    code = "busy"
    http_status = 503


class TooManyRequests(Dev8Error):
    """More at once than one user may have (e.g. open progress streams), or more failed
    sign-ins than the server allows; ``retry_after``: seconds to wait, when known."""

    code = "too_many_requests"
    http_status = 429

    def __init__(self, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(Dev8Error):
    """A request body beyond the server's limit (``DEV8_MAX_BODY_BYTES``)."""

    code = "payload_too_large"
    http_status = 413


class OperationTimeout(Dev8Error):
    code = "timeout"
    http_status = 504


class UnsafeArchive(InvalidInput):
    """An archive that could write outside its volume, or holds what a volume must not."""

    code = "unsafe_archive"


class CorruptArchive(InvalidInput):
    """An archive that cannot be read to the end, or whose checksum does not match."""

    code = "corrupt_archive"


class WorkspaceCrashed(ProviderError):
    """The workspace's container exited or kept restarting instead of becoming healthy."""

    code = "workspace_crashed"


class HostPathUnsupported(ProviderError):
    """A helper job asks for a directory of this machine, which the backend's nodes cannot
    mount (Kubernetes: files stream through the API instead)."""

    code = "host_path_unsupported"
    http_status = 501


class ClaimNotExpandable(ProviderError):
    """A raised quota meets a volume whose storage cannot grow (a Kubernetes storage class
    without allowVolumeExpansion)."""

    code = "claim_not_expandable"
    http_status = 409


class CommandFailed(ProviderError):
    """A command dev8 runs inside a workspace (its package tool, say) failed."""

    code = "command_failed"


class OperationAbandoned(Dev8Error):
    """A queued operation was interrupted (the server died while running it) too often."""

    code = "operation_abandoned"
    http_status = 500


class DatabaseUnavailable(Dev8Error):
    """The database could not be opened or reached."""

    code = "database_unavailable"
    http_status = 503


class SecretsUnreadable(Dev8Error):
    """Workspace secrets sealed with a key this process does not hold, or read without
    them where they are needed."""

    code = "secrets_unreadable"
    http_status = 500


def _with_subclasses(cls: type[Dev8Error]) -> list[type[Dev8Error]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _with_subclasses(child))]


def errors_by_code() -> dict[str, type[Dev8Error]]:
    """Every error class by its stable code, derived from the hierarchy so that a new class
    is known to the API and the SDK the moment it is defined."""
    found: dict[str, type[Dev8Error]] = {}
    for cls in _with_subclasses(Dev8Error):
        if found.setdefault(cls.code, cls) is not cls:
            raise TypeError(f"{cls.__name__} reuses the error code {cls.code!r}")
    return found


ERRORS_BY_CODE: dict[str, type[Dev8Error]] = errors_by_code()
