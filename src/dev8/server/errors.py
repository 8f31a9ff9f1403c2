"""Every failure becomes ``{"error": code, "message": one line}`` with the error's status.

The codes are those of ``dev8.core.errors``, which the SDK maps back to the same classes.
An unexpected exception is a 500 with a request id to find its traceback in the log, never
the traceback itself.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from dev8.core.errors import (
    Dev8Error,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    TooManyRequests,
    Unauthorized,
)

log = logging.getLogger("dev8.server")


def error_response(request: Request, error: Dev8Error) -> JSONResponse:
    request.state.error = error
    return JSONResponse(
        {"error": error.code, "message": error.message},
        status_code=error.http_status,
        headers=error_headers(error),
    )


def error_headers(error: Dev8Error) -> dict[str, str] | None:
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(error, TooManyRequests) and error.retry_after > 0:
        return {"Retry-After": str(error.retry_after)}
    return None


def _one_line(message: str) -> str:
    return " ".join(message.split())[:500]


async def _dev8_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Dev8Error)
    exc.message = _one_line(exc.message)  # in place: a subclass may carry more (retry_after)
    return error_response(request, exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
    message = f"{where}: {first.get('msg', 'invalid')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return error_response(request, InvalidInput(_one_line(message)))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    error: Dev8Error
    if exc.status_code == 404:
        error = NotFound(f"no endpoint {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    else:
        error = Dev8Error(_one_line(str(exc.detail)))
        error.http_status = exc.status_code
    return error_response(request, error)


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the API's validation let through (e.g. a NUL character).
    return error_response(request, InvalidInput("a value in the request is not acceptable"))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    reference = uuid.uuid4().hex[:12]
    log.error(
        "request %s %s failed (ref %s)", request.method, request.url.path, reference, exc_info=exc
    )
    return error_response(
        request, Dev8Error(f"internal error (ref {reference}); the server log has the details")
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(Dev8Error, _dev8_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected)
