"""The sync service's WebSocket protocol (`/api/v1/sync/{run_id}`), scoped by run.

A frame is one JSON message or a JSON list of them, in either direction. Requests carry an
`id` chosen by the client; every answer names it. `key` makes a SIGNAL_ENTRY or PUBLISH
idempotent within the run: sent again after a reconnect, it is counted once and answered
with the sequence number it got the first time.

client -> hub                                          hub -> client
  SIGNAL_ENTRY {id, state, key}                          RESULT {id, seq}
  BARRIER {id, state, target, timeout}                   RESULT {id, seq: count reached}
  PUBLISH {id, topic, payload, key}                      RESULT {id, seq}
  SUBSCRIBE {id, topic, after}                           MESSAGES {id, items: [[seq, payload]]}
  CANCEL {id, target}                                    ERROR {id, code, message} (target ends)

A subscription first gets every message after `after` (0: all), then live ones, in order,
until it is cancelled or the connection closes. ERROR codes: `timeout` (a barrier's),
`cancelled`, `invalid_request`, `unavailable` (the engine failed; try again).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

NAME = r"^[^\x00-\x1f]{1,200}$"
SYNC_PATH = "/api/v1/sync/{run_id}"
RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int = Field(ge=0)


class SignalEntry(_Request):
    """Count this instance into `state`; answered with its sequence number (1-based)."""

    type: Literal["SIGNAL_ENTRY"] = "SIGNAL_ENTRY"
    state: str = Field(pattern=NAME)
    key: str | None = Field(None, max_length=200)


class Barrier(_Request):
    """Wait until `target` instances have signalled `state`."""

    type: Literal["BARRIER"] = "BARRIER"
    state: str = Field(pattern=NAME)
    target: int = Field(ge=1, le=1_000_000)
    timeout: float | None = Field(None, gt=0, le=7 * 86400)


class Publish(_Request):
    """Append `payload` (any JSON) to `topic`; answered with its sequence number."""

    type: Literal["PUBLISH"] = "PUBLISH"
    topic: str = Field(pattern=NAME)
    payload: Any
    key: str | None = Field(None, max_length=200)


class Subscribe(_Request):
    """Receive the messages of `topic` after sequence number `after`, then live ones."""

    type: Literal["SUBSCRIBE"] = "SUBSCRIBE"
    topic: str = Field(pattern=NAME)
    after: int = Field(0, ge=0)


class Cancel(_Request):
    """End request `target` (a barrier or a subscription)."""

    type: Literal["CANCEL"] = "CANCEL"
    target: int = Field(ge=0)


SyncRequestModel = SignalEntry | Barrier | Publish | Subscribe | Cancel
SYNC_REQUESTS: TypeAdapter[SyncRequestModel] = TypeAdapter(
    Annotated[SyncRequestModel, Field(discriminator="type")]
)


class Result(BaseModel):
    """A request's answer."""

    type: Literal["RESULT"] = "RESULT"
    id: int
    seq: int


class Messages(BaseModel):
    """Messages of a subscription, in order: `[seq, payload]` pairs."""

    type: Literal["MESSAGES"] = "MESSAGES"
    id: int
    items: list[tuple[int, Any]]


class SyncError(BaseModel):
    """A request failed or ended; `id` is None for a frame that could not be read."""

    type: Literal["ERROR"] = "ERROR"
    id: int | None
    code: str
    message: str


SyncReplyModel = Result | Messages | SyncError
SYNC_REPLIES: TypeAdapter[SyncReplyModel] = TypeAdapter(
    Annotated[SyncReplyModel, Field(discriminator="type")]
)
MAX_PAYLOAD_BYTES = 1_000_000
"""The largest JSON payload one PUBLISH may carry."""
