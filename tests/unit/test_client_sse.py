"""The server-sent-event parser and the job-event follower."""

from __future__ import annotations

import json

import pytest

from testfleet.client import ServerSentEvent, SseDecoder, UnexpectedResponse
from testfleet.client.sse import EventFollower
from testfleet.protocol.states import JobState


def record(event_id: int, kind: str = "log", **data: object) -> str:
    body = {"id": event_id, "kind": kind, "job_id": 1, "at": "2024-05-01T12:00:00Z", "data": data}
    return json.dumps(body)


def sse(event: str, data: str, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def test_a_simple_event() -> None:
    events = SseDecoder().feed(b'id: 3\nevent: job_started\ndata: {"a": 1}\n\n')
    assert events == [ServerSentEvent("job_started", '{"a": 1}', "3")]


def test_events_split_anywhere_across_chunks() -> None:
    stream = b"id: 1\nevent: a\ndata: one\n\n: keepalive\n\nid: 2\nevent: b\ndata: two\n\n"
    for size in range(1, len(stream)):
        decoder = SseDecoder()
        events = []
        for start in range(0, len(stream), size):
            events += decoder.feed(stream[start : start + size])
        assert [(e.event, e.data, e.id) for e in events] == [("a", "one", "1"), ("b", "two", "2")]


def test_crlf_and_cr_line_endings() -> None:
    decoder = SseDecoder()
    events = decoder.feed(b"event: a\r\ndata: x\r\n\r")
    events += decoder.feed(b"\nevent: b\rdata: y\r\r")
    assert [(e.event, e.data) for e in events] == [("a", "x"), ("b", "y")]


def test_multi_line_data_comments_retry_and_default_name() -> None:
    events = SseDecoder().feed(b": hello\nretry: 1500\ndata: a\ndata:b\ndata\n\n")
    assert events == [ServerSentEvent("message", "a\nb\n", None, 1500)]


def test_no_event_without_data() -> None:
    assert SseDecoder().feed(b"event: ping\n\nid: 4\n\n") == []


def test_a_byte_order_mark_and_split_utf8() -> None:
    payload = "\ufeffdata: h\u00e9\n\n".encode()
    decoder = SseDecoder()
    events = decoder.feed(payload[:7]) + decoder.feed(payload[7:])
    assert events == [ServerSentEvent("message", "h\u00e9")]


def test_unicode_line_separators_inside_data_do_not_split() -> None:
    text = "a\u2028b\u0085c\x1ed"
    events = SseDecoder().feed(f"data: {text}\n\n".encode())
    assert [e.data for e in events] == [text]


def test_follower_yields_records_and_stops_at_end() -> None:
    follower = EventFollower(job_id=1, after=0)
    chunk = (
        sse("job_started", record(5, "job_started"), 5)
        + sse("log", record(6, text="hi\n", stream="stdout"), 6)
        + sse("end", '{"state": "completed"}')
        + sse("log", record(7), 7)
    )
    records = follower.feed(chunk)
    assert [r.id for r in records] == [5, 6]
    assert records[1].data["text"] == "hi\n"
    assert follower.finished and follower.final_state is JobState.COMPLETED
    assert follower.last_id == 6


def test_follower_drops_events_it_has_seen() -> None:
    follower = EventFollower(job_id=1, after=6)
    records = follower.feed(sse("log", record(5), 5) + sse("log", record(7), 7))
    assert [r.id for r in records] == [7]


def test_follower_rejects_data_that_is_not_an_event() -> None:
    with pytest.raises(UnexpectedResponse, match="not an event record"):
        EventFollower(job_id=1).feed(sse("log", "[1, 2]"))
    with pytest.raises(UnexpectedResponse, match="bad end event"):
        EventFollower(job_id=1).feed(sse("end", '{"state": "exploded"}'))
