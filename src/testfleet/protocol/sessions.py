"""The JSON bodies of the sessions API: WebDriver sessions through the gateway, their
commands and final screenshot (what the web UI's sessions page shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

SessionState = Literal["queued", "creating", "active", "ending", "lost", "ended", "failed"]


class SessionInfo(BaseModel):
    """One gateway session: queued, being created, live, or over."""

    id: int = Field(description="The hub's number for the session (the API's key).")
    session_id: str | None = Field(
        None, description="The WebDriver session id the client uses (the driver's)."
    )
    state: SessionState
    requestor: str
    device_id: str | None = None
    agent: str | None = None
    node_url: str | None = None
    hub: str | None = Field(None, description="The hub that took the request.")
    priority: int = 0
    requested: dict[str, Any] = Field(description="The client's capabilities, as sent.")
    capabilities: dict[str, Any] | None = Field(
        None, description="What the driver answered it got."
    )
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    last_command_at: datetime | None = None
    commands: int = 0
    idle_timeout: int = Field(description="Seconds without a command before it is ended.")
    idle_expires_at: datetime | None = None
    end_reason: str | None = None
    has_screenshot: bool = False


class SessionList(BaseModel):
    """`GET /api/v1/sessions`: newest first; pass `next_cursor` as `cursor` for more."""

    server_id: str
    sessions: list[SessionInfo]
    next_cursor: str | None = None


class SessionCommand(BaseModel):
    """One command of a session, as the hub forwarded it."""

    id: int
    at: datetime
    method: str
    command: str = Field(description="METHOD and path after the session, ids as {id}.")
    status: int = Field(description="The driver's HTTP status.")
    error: str | None = Field(None, description="The W3C error code of a failed command.")
    duration_ms: float


class SessionCommands(BaseModel):
    """`GET /api/v1/sessions/{id}/commands`: in order; `next_after` continues."""

    server_id: str
    session: int
    commands: list[SessionCommand]
    next_after: int
