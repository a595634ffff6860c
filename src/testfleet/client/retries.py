"""When the clients send a request again: starting a job carries an idempotency key, so a
request whose answer was lost (503, a broken connection) is sent again without making a
second job."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from testfleet.client.errors import ApiError, ClientError, HubUnreachable

START_DELAYS = (0.5, 1.0, 2.0)
"""Seconds before each new try of a start (after the first)."""


def new_key() -> str:
    """A fresh idempotency key."""
    return uuid.uuid4().hex


def retriable(error: ClientError) -> bool:
    """The hub could not answer for now (overloaded, its store away), or was not reached."""
    return isinstance(error, HubUnreachable) or (
        isinstance(error, ApiError) and error.status == 503
    )


def pauses() -> Iterator[float | None]:
    """The pause before each try: None for the last (give up after it)."""
    yield from START_DELAYS
    yield None
