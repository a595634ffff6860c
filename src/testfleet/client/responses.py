"""Turn HTTP responses into models or errors; shared by the sync and async clients."""

from __future__ import annotations

from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from testfleet.client.errors import ApiError, HubUnreachable, UnexpectedResponse
from testfleet.protocol.api import ErrorBody
from testfleet.protocol.version import SERVER_ID_HEADER

M = TypeVar("M", bound=BaseModel)

_EXCERPT = 300


def describe(request: httpx.Request) -> str:
    """`GET /api/v1/jobs/3` for messages."""
    return f"{request.method} {request.url.path}"


def excerpt(text: str) -> str:
    """The start of a body, for error messages."""
    text = text.strip()
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."


def raise_for_error(response: httpx.Response) -> None:
    """Raise `ApiError` for a 4xx/5xx response (its body must have been read)."""
    if response.is_success:
        return
    server_id = response.headers.get(SERVER_ID_HEADER)
    try:
        body = ErrorBody.model_validate_json(response.content)
    except ValidationError:
        message = excerpt(response.text) or response.reason_phrase or "no message"
        raise ApiError(
            response.status_code, f"http_{response.status_code}", message, server_id=server_id
        ) from None
    if body.server_id is None:
        body.server_id = server_id
    raise ApiError.from_body(response.status_code, body)


def parse_model(response: httpx.Response, model: type[M]) -> M:
    """Check the status and validate the JSON body against `model`."""
    raise_for_error(response)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        detail = f"not a {model.__name__}: {_first_problem(error)}; body: {excerpt(response.text)}"
        raise UnexpectedResponse(describe(response.request), detail) from None


def parse_text(response: httpx.Response) -> str:
    """Check the status and return the body as text."""
    raise_for_error(response)
    return response.text


def parse_nothing(response: httpx.Response) -> None:
    """Check the status; ignore any body."""
    raise_for_error(response)


def unreachable(base_url: str, error: httpx.TransportError) -> HubUnreachable:
    """A clear error for a failed connection, naming the hub's URL."""
    if isinstance(error, httpx.TimeoutException):
        reason = f"no answer in time ({type(error).__name__})"
    else:
        reason = str(error) or type(error).__name__
    return HubUnreachable(base_url, reason)


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"
