"""The hub's SSE keep-alive: its setting, and the client's reader skipping the comment."""

from __future__ import annotations

import json

import pytest

from testfleet.client import SseDecoder
from testfleet.client.sse import EventFollower
from testfleet.hub.config import SSE_KEEPALIVE, HubConfig
from testfleet.hub.routes.jobs import KEEPALIVE_COMMENT
from testfleet.protocol.states import JobState


def test_keep_alive_every_15_seconds_by_default() -> None:
    assert SSE_KEEPALIVE == 15.0
    assert HubConfig().sse_keepalive == 15.0


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_keep_alive_interval_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="sse-keepalive must be positive"):
        HubConfig(sse_keepalive=seconds).check()


def test_the_keep_alive_is_a_comment() -> None:
    assert KEEPALIVE_COMMENT.startswith(":") and KEEPALIVE_COMMENT.endswith("\n\n")
    assert SseDecoder().feed(KEEPALIVE_COMMENT.encode()) == []


def test_the_follower_skips_keep_alives_between_events() -> None:
    def event(event_id: int) -> str:
        body = {"id": event_id, "kind": "log", "job_id": 1, "at": "2024-05-01T12:00:00Z"}
        return f"id: {event_id}\nevent: log\ndata: {json.dumps(body)}\n\n"

    follower = EventFollower(job_id=1)
    stream = (
        KEEPALIVE_COMMENT
        + event(1)
        + KEEPALIVE_COMMENT * 2
        + event(2)
        + KEEPALIVE_COMMENT
        + 'event: end\ndata: {"state": "completed"}\n\n'
    ).encode()
    records = [r for at in range(len(stream)) for r in follower.feed(stream[at : at + 1])]
    assert [r.id for r in records] == [1, 2]
    assert follower.final_state is JobState.COMPLETED
