"""Reading an agent's frames: a validated message, or the refusal that says what is wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from testfleet.hub.errors import json_pointer
from testfleet.protocol.documents import DocumentLimits, DocumentProblem, check_document
from testfleet.protocol.wire import (
    AGENT_MESSAGE_TYPES,
    AGENT_MESSAGES,
    AgentMessageModel,
    Error,
)

MAX_FRAME = 4 * 1024 * 1024
FRAME_LIMITS = DocumentLimits(max_depth=16, max_nodes=50_000, nul_allowed=True)
"""How nested and how big a decoded frame may be (log output may hold NUL characters; the
models' stored text fields refuse them)."""


@dataclass(frozen=True)
class Refusal:
    """Why a frame was refused, as the ERROR the agent gets."""

    code: str
    message: str
    location: str | None = None

    def error(self, *, fatal: bool = False) -> Error:
        """The ERROR message."""
        return Error(code=self.code, message=self.message, location=self.location, fatal=fatal)


def parse_frame(text: str) -> AgentMessageModel | Refusal:
    """A message of the agent protocol (`testfleet.protocol.wire`), or a Refusal."""
    if len(text) > MAX_FRAME:
        return Refusal("too_large", f"a message may be at most {MAX_FRAME} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return Refusal("malformed_message", f"not JSON: {error.msg} at column {error.colno}")
    except RecursionError:
        return Refusal("malformed_message", "the JSON is nested too deeply")
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        return Refusal("malformed_message", f"not JSON: {error}")
    try:
        check_document(data, FRAME_LIMITS)
    except DocumentProblem as problem:
        return Refusal("malformed_message", str(problem), location=problem.location)
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in AGENT_MESSAGE_TYPES:
        return Refusal(
            "unknown_message",
            f"unknown message type {kind!r}; known: {', '.join(AGENT_MESSAGE_TYPES)}",
            location="/type",
        )
    try:
        return AGENT_MESSAGES.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = json_pointer(first["loc"][1:])
        return Refusal(
            "malformed_message", f"{kind}: {location or '/'}: {first['msg']}", location=location
        )
