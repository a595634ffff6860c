"""The sessions API's endpoints as request descriptions (see `calls.py`)."""

from __future__ import annotations

from urllib.parse import quote

from testfleet.client import responses
from testfleet.client.calls import API, Call, Params
from testfleet.protocol.sessions import SessionCommands, SessionInfo, SessionList


def list_sessions(
    state: str = "live",
    device: str | None = None,
    agent: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Call[SessionList]:
    """`GET /api/v1/sessions`."""
    params: Params = [("state", state), ("limit", limit)]
    params += [(k, v) for k, v in (("device", device), ("agent", agent), ("cursor", cursor)) if v]
    return Call(
        "GET",
        f"{API}/sessions",
        lambda r: responses.parse_model(r, SessionList),
        params=params,
    )


def kill_session(key: str) -> Call[SessionInfo]:
    """`DELETE /api/v1/sessions/{key}`."""
    return Call(
        "DELETE",
        f"{API}/sessions/{quote(key, safe='')}",
        lambda r: responses.parse_model(r, SessionInfo),
    )


def session_commands(key: str, after: int = 0) -> Call[SessionCommands]:
    """`GET /api/v1/sessions/{key}/commands`."""
    return Call(
        "GET",
        f"{API}/sessions/{quote(key, safe='')}/commands",
        lambda r: responses.parse_model(r, SessionCommands),
        params=[("after", after)],
    )
