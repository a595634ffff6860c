"""Server-sent events: an incremental parser, and the job-event follower built on it.

The format (https://html.spec.whatwg.org/multipage/server-sent-events.html) is small enough to
parse here. We split lines only at CR, LF and CRLF as the format says; `httpx.Response.iter_lines`
also splits at U+2028, U+0085 and other separators that JSON may carry unescaped inside a log
line, which would corrupt events.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from testfleet.client.errors import UnexpectedResponse
from testfleet.client.responses import describe, excerpt
from testfleet.protocol.api import EventRecord
from testfleet.protocol.states import JobState

END_EVENT = "end"
"""The last event of a job's stream; its data is `{"state": "<final job state>"}`."""


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SseDecoder:
    """Feed bytes as they arrive; get back the events they complete."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._after_cr = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode `chunk` and return the events it completes."""
        return self.feed_text(self._text.decode(chunk))

    def feed_text(self, text: str) -> list[ServerSentEvent]:
        """Like `feed` for already decoded text."""
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        events: list[ServerSentEvent] = []
        lines = (self._partial + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._partial = lines.pop()
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event = None
        if self._data:
            event = ServerSentEvent(
                self._event or "message", "\n".join(self._data), self._id, self._retry
            )
        self._event, self._data = "", []
        return event


class EventFollower:
    """Turn a job's SSE stream into `EventRecord`s; remember where to resume and how it ended."""

    def __init__(self, job_id: int, after: int = 0) -> None:
        self.job_id = job_id
        self.last_id = after
        self.final_state: JobState | None = None
        self._decoder = SseDecoder()

    @property
    def finished(self) -> bool:
        """True once the `end` event arrived."""
        return self.final_state is not None

    def reconnecting(self) -> None:
        """Forget a half-received event before the stream is opened again."""
        self._decoder = SseDecoder()

    def feed(self, chunk: bytes) -> list[EventRecord]:
        """The new job events in `chunk` (events already seen are dropped)."""
        records: list[EventRecord] = []
        for sse in self._decoder.feed(chunk):
            if self.finished:
                break
            record = self._record(sse)
            if record is not None and record.id > self.last_id:
                self.last_id = record.id
                records.append(record)
        return records

    def _record(self, sse: ServerSentEvent) -> EventRecord | None:
        what = f"the event stream of job {self.job_id}"
        if sse.event == END_EVENT:
            try:
                self.final_state = JobState(json.loads(sse.data)["state"])
            except (ValueError, KeyError, TypeError):
                raise UnexpectedResponse(what, f"bad end event: {excerpt(sse.data)}") from None
            return None
        try:
            return EventRecord.model_validate_json(sse.data)
        except ValidationError:
            raise UnexpectedResponse(
                what, f"event {sse.event!r} is not an event record: {excerpt(sse.data)}"
            ) from None


def check_event_stream(response: httpx.Response) -> None:
    """Raise `UnexpectedResponse` unless the response is an event stream."""
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/event-stream"):
        raise UnexpectedResponse(
            describe(response.request),
            f"expected text/event-stream, got {kind or 'no content type'}",
        )
