"""The one place errors are rendered as Databricks' `{"error_code", "message"}` bodies."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiln.errors import KilnError

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger("kiln.server")


def error_response(status: int, error_code: str, message: str) -> JSONResponse:
    """A Databricks-style error response."""
    return JSONResponse({"error_code": error_code, "message": message}, status_code=status)


def _field_name(loc: tuple[Any, ...]) -> str:
    # Only the leading element is a location marker; a field may itself be called `path`.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "request body"


def _validation_message(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            detail = err.get("ctx", {}).get("error", "invalid JSON")
            return "MALFORMED_REQUEST", f"Malformed JSON in request body: {detail}"
    msgs = []
    for err in errors[:5]:
        field = _field_name(tuple(err.get("loc", ())))
        if err.get("type") == "missing":
            msgs.append(f"Missing required field: {field}")
        else:
            msgs.append(f"Invalid value for field '{field}': {err.get('msg', 'invalid')}")
    return "INVALID_PARAMETER_VALUE", "; ".join(msgs) or "Invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception to one renderer."""

    async def kiln_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, KilnError)
        return error_response(exc.http_status, exc.error_code, exc.message)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        code, message = _validation_message(exc)
        return error_response(400, code, message)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return error_response(
                404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.url.path}'"
            )
        if exc.status_code == 405:
            return error_response(
                405, "BAD_REQUEST", f"Method {request.method} is not allowed on {request.url.path}"
            )
        return error_response(exc.status_code, "BAD_REQUEST", str(exc.detail))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "INTERNAL_ERROR", "Internal error; see the server log.")

    app.add_exception_handler(KilnError, kiln_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
