"""API errors: a code, a message and, for bad input, where it is; never a 500 for bad input."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from testfleet.protocol.api import ErrorBody, ErrorDetail
from testfleet.store.writer import CommitUnknown, is_unavailable

_log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raise from a route to answer with `status` and an ErrorBody."""

    def __init__(
        self, status: int, code: str, message: str, errors: Iterable[ErrorDetail] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = list(errors)


def json_pointer(location: Sequence[Any]) -> str:
    """('tests', 0, 'name') -> '/tests/0/name' (RFC 6901 escaping)."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in location]
    return "/" + "/".join(parts) if parts else ""


def _body(
    request: Request, code: str, message: str, errors: Sequence[ErrorDetail] = ()
) -> dict[str, Any]:
    server_id = getattr(request.app.state, "server_id", None)
    return ErrorBody(
        code=code, message=message, errors=list(errors), server_id=server_id
    ).model_dump()


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def install_error_handlers(app: FastAPI) -> None:
    """Make every error a JSON ErrorBody."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(
            _body(request, error.code, error.message, error.errors), status_code=error.status
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            ErrorDetail(location=_request_location(e["loc"]), message=e["msg"])
            for e in error.errors()
        ]
        first = details[0] if details else None
        message = f"{first.location}: {first.message}" if first else "invalid request"
        return JSONResponse(_body(request, "invalid_request", message, details), status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        message = str(error.detail)
        if error.status_code == 413:
            limit = request.scope.get("starlette.max_body_size")
            message = f"the request body is too large: at most {limit} bytes"
        return JSONResponse(
            _body(request, code, message),
            status_code=error.status_code,
            headers=error.headers,
        )

    @app.exception_handler(CommitUnknown)
    async def _commit_unknown(request: Request, error: CommitUnknown) -> JSONResponse:
        _log.warning("%s %s: %s", request.method, request.url.path, error)
        message = f"{error}; look (list jobs, say) before doing it again"
        return JSONResponse(_body(request, "commit_unknown", message), status_code=503)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        if is_unavailable(error):
            _log.warning("%s %s: the store failed: %r", request.method, request.url.path, error)
            cause = error.orig if isinstance(error, DBAPIError) else error
            message = f"the store cannot be reached: {cause!r}; try again shortly"
            return JSONResponse(_body(request, "store_unavailable", message), status_code=503)
        _log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            _body(request, "internal_error", f"internal error: {error!r}"), status_code=500
        )


def _request_location(loc: Sequence[Any]) -> str:
    """('query', 'limit') -> 'query.limit'; ('body', 'name') -> '/name'."""
    if loc and loc[0] == "body":
        return json_pointer(loc[1:]) or "/"
    return ".".join(str(p) for p in loc)
