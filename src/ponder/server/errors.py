"""OpenAI-style error bodies, and which status each failure gets.

Every error leaves the server as ``{"error": {"message", "type", "param",
"code"}}`` (vLLM's ``ErrorResponse``). Client mistakes are 4xx, never 500::

    malformed JSON, wrong types, missing fields  400 invalid_request_error
    ConfigError, CapabilityError                 400 invalid_request_error
    BudgetExceeded                               400 code "budget_exceeded"
    missing / wrong API key                      401 authentication_error
    unknown model, context or route              404 not_found_error
    body too large                               413
    server saturated                             429 code "server_busy" + Retry-After
    request timeout                              504 code "timeout"
    RemoteError (the upstream engine failed)     502 upstream_error
    ModelError                                   503 (only at startup in practice)
    anything else                                500 server_error (logged with traceback)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ponder.errors import (
    BackendError,
    BudgetExceeded,
    CapabilityError,
    ConfigError,
    ModelError,
    PonderError,
    RemoteError,
)

logger = logging.getLogger("ponder.server")

_STATUS_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                 403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
                 413: "invalid_request_error", 429: "rate_limit_error", 502: "upstream_error",
                 503: "server_error", 504: "timeout_error"}


class ApiError(PonderError):
    """An error with an HTTP status, raised by the server's own checks."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None,
                 code: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    @property
    def type(self) -> str:
        return _STATUS_TYPES.get(self.status, "server_error" if self.status >= 500
                                 else "invalid_request_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


def from_exception(exc: BaseException) -> ApiError:
    """The ``ApiError`` a library exception becomes at the HTTP boundary."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, BudgetExceeded):
        return ApiError(str(exc), param="ponder.budget", code="budget_exceeded")
    if isinstance(exc, ConfigError | CapabilityError):
        return ApiError(str(exc), code="invalid_value")
    if isinstance(exc, RemoteError):
        return ApiError(str(exc), status=502, code="upstream_error")
    if isinstance(exc, ModelError):
        return ApiError(str(exc), status=503, code="model_unavailable")
    if isinstance(exc, TimeoutError):
        return ApiError("the request took longer than this server's request timeout",
                        status=504, code="timeout")
    if isinstance(exc, BackendError):
        logger.error("backend failed: %s", exc)
        return ApiError(f"the model engine failed: {exc}", status=500, code="backend_error")
    logger.error("unhandled error", exc_info=exc)
    return ApiError("internal server error", status=500, code="internal_error")


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    if not errors:
        return ApiError("invalid request body")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        return ApiError(f"the body is not valid JSON: {first.get('msg', '')}",
                        code="invalid_json")
    param = ".".join(loc) or None
    if param is None:
        return ApiError("the body must be a JSON object (Content-Type: application/json)",
                        code="invalid_body")
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return ApiError(message, param=param, code="invalid_value")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an OpenAI error body."""

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(ApiError(str(exc.detail), status=exc.status_code,
                                       headers=exc.headers))

    @app.exception_handler(PonderError)
    async def _on_ponder(request: Request, exc: PonderError) -> JSONResponse:
        return error_response(from_exception(exc))

    @app.exception_handler(Exception)
    async def _on_other(request: Request, exc: Exception) -> JSONResponse:
        return error_response(from_exception(exc))
