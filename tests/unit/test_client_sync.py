"""The blocking client against a fake hub (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from testfleet.client import ApiError, Client, HubUnreachable, UnexpectedResponse, WaitTimeout
from testfleet.client import settings as client_settings
from testfleet.protocol.descriptor import JobDescriptor
from testfleet.protocol.states import JobState

HUB = "http://hub.test:8470"
Handler = Callable[[httpx.Request], httpx.Response]

DESCRIPTOR: dict[str, Any] = {
    "name": "smoke",
    "tests": [
        {"name": "t", "steps": [{"name": "say", "plugin": "echo", "params": {"text": "hi"}}]}
    ],
}


def client(handler: Handler, token: str | None = None) -> Client:
    return Client(HUB, token=token, transport=httpx.MockTransport(handler))


def answer(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"X-Testfleet-Server-Id": "hub-1"})


def job_status(state: str) -> dict[str, Any]:
    return {
        "job_id": 7,
        "name": "smoke",
        "state": state,
        "requestor": "me",
        "tags": [],
        "created_at": "2024-05-01T12:00:00Z",
        "server_id": "hub-1",
        "runs_requested": 1,
        "runs": [],
        "descriptor": DESCRIPTOR,
    }


def summary(job_id: int) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "name": "j",
        "state": "completed",
        "requestor": "me",
        "tags": [],
        "created_at": "2024-05-01T12:00:00Z",
    }


def test_every_request_names_the_api_version_and_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(200, {"version": 1, "server_id": "hub-1", "package_version": "0.1.0"})

    with client(handler, token="s3cret") as hub:
        info = hub.version()
    assert info.server_id == "hub-1"
    assert seen[0].url == f"{HUB}/api/v1/version"
    assert seen[0].headers["X-Testfleet-Api-Version"] == "1"
    assert seen[0].headers["Authorization"] == "Bearer s3cret"


def test_no_authorization_header_without_a_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(200, {"version": 1, "server_id": "h", "package_version": "0"})

    client(handler).version()
    assert "Authorization" not in seen[0].headers


@pytest.mark.parametrize(
    ("descriptor", "content_type"),
    [
        (DESCRIPTOR, "application/json"),
        (json.dumps(DESCRIPTOR), "application/json"),
        ("name: smoke\ntests: []\n", "application/yaml"),
        (JobDescriptor.model_validate(DESCRIPTOR), "application/json"),
    ],
)
def test_start_sends_the_descriptor_with_its_content_type(
    descriptor: Any, content_type: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(201, {"job_id": 42, "server_id": "hub-1"})

    assert client(handler).start(descriptor) == 42
    request = seen[0]
    assert (request.method, request.url.path) == ("POST", "/api/v1/jobs")
    assert request.headers["Content-Type"] == content_type
    if isinstance(descriptor, str):
        assert request.content.decode() == descriptor
    else:
        assert json.loads(request.content)["name"] == "smoke"


def test_an_error_body_becomes_an_api_error() -> None:
    body = {
        "code": "invalid_descriptor",
        "message": "the descriptor is invalid",
        "errors": [{"location": "/tests/0/steps", "message": "at least 1 item"}],
        "server_id": "hub-1",
    }
    with pytest.raises(ApiError) as caught:
        client(lambda _: answer(422, body)).start(DESCRIPTOR)
    error = caught.value
    assert (error.status, error.code, error.server_id) == (422, "invalid_descriptor", "hub-1")
    assert error.errors[0].location == "/tests/0/steps"
    assert str(error) == (
        "the descriptor is invalid (HTTP 422, invalid_descriptor)\n"
        "  at /tests/0/steps: at least 1 item"
    )


def test_an_error_that_is_not_json_still_says_what_happened() -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad gateway</html>")

    with pytest.raises(ApiError) as caught:
        client(handler).status(1)
    assert caught.value.code == "http_502"
    assert "Bad gateway" in caught.value.message


def test_a_body_of_the_wrong_shape_is_an_unexpected_response() -> None:
    with pytest.raises(UnexpectedResponse, match=r"GET /api/v1/jobs/1.*not a JobStatus"):
        client(lambda _: answer(200, {"hello": "world"})).status(1)


def test_a_refused_connection_names_the_hub() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with pytest.raises(HubUnreachable, match=f"cannot reach the testfleet hub at {HUB}"):
        client(handler).agents()


def test_a_real_closed_port_is_unreachable() -> None:
    with Client("http://127.0.0.1:1") as hub, pytest.raises(HubUnreachable, match=r":1: "):
        hub.version()


def test_a_url_without_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="http://host:port"):
        Client("localhost:8470")


def test_list_sends_every_filter() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(200, {"server_id": "h", "jobs": [summary(3)], "next_cursor": None})

    since = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    page = client(handler).list(
        states=[JobState.RUNNING, "queued"],
        tags=["a", "b"],
        requestor="me",
        name="smoke",
        created_after=since,
        created_before="2024-06-01T00:00:00Z",
        limit=10,
        cursor="c1",
    )
    assert [job.job_id for job in page.jobs] == [3]
    assert seen[0].url.params.multi_items() == [
        ("state", "running"),
        ("state", "queued"),
        ("tag", "a"),
        ("tag", "b"),
        ("requestor", "me"),
        ("name", "smoke"),
        ("created_after", "2024-05-01T12:00:00Z"),
        ("created_before", "2024-06-01T00:00:00Z"),
        ("limit", "10"),
        ("cursor", "c1"),
    ]


def test_iter_jobs_walks_every_page() -> None:
    pages = {None: ([5, 4], "p2"), "p2": ([3, 2], "p3"), "p3": ([1], None)}
    cursors: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        cursors.append(cursor)
        ids, following = pages[cursor]
        return answer(
            200, {"server_id": "h", "jobs": [summary(i) for i in ids], "next_cursor": following}
        )

    jobs = list(client(handler).iter_jobs(tags=["x"], page_size=2))
    assert [job.job_id for job in jobs] == [5, 4, 3, 2, 1]
    assert cursors == [None, "p2", "p3"]


def event_json(event_id: int, kind: str = "log") -> str:
    return json.dumps(
        {
            "id": event_id,
            "kind": kind,
            "job_id": 7,
            "task_id": 1,
            "at": "2024-05-01T12:00:00Z",
            "data": {"text": f"line {event_id}\n"},
        }
    )


def sse_body(*ids: int, end: str | None = None) -> bytes:
    parts = [f"id: {i}\nevent: log\ndata: {event_json(i)}\n\n" for i in ids]
    if end:
        parts.append(f'event: end\ndata: {{"state": "{end}"}}\n\n')
    return "".join(parts).encode()


def stream(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream"})


def test_follow_reads_events_until_the_end_event() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return stream(sse_body(1, 2, end="failed"))

    with client(handler).follow(7, after=0) as events:
        assert [event.id for event in events] == [1, 2]
        assert events.final_state is JobState.FAILED
    params = seen[0].url.params
    assert (params["follow"], params["after"]) == ("true", "0")
    assert seen[0].headers["Accept"] == "text/event-stream"


def test_follow_reopens_a_stream_that_closed_early(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_settings, "backoff", lambda failures: 0.0)
    bodies = {"0": sse_body(1, 2), "2": sse_body(3, end="completed")}

    def handler(request: httpx.Request) -> httpx.Response:
        return stream(bodies[request.url.params["after"]])

    events = client(handler).follow(7)
    assert [event.id for event in events] == [1, 2, 3]
    assert events.final_state is JobState.COMPLETED


def test_follow_gives_up_when_the_stream_keeps_closing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_settings, "backoff", lambda failures: 0.0)
    calls: list[int] = []

    def handler(_: httpx.Request) -> httpx.Response:
        calls.append(1)
        return stream(b": nothing\n\n")

    with pytest.raises(HubUnreachable, match="closing the event stream"):
        list(client(handler).follow(7))
    assert len(calls) == client_settings.FOLLOW_RETRIES + 1


def test_follow_of_an_unknown_job_is_an_api_error() -> None:
    body = {"code": "not_found", "message": "job 7 does not exist"}
    with pytest.raises(ApiError, match="job 7 does not exist"):
        list(client(lambda _: answer(404, body)).follow(7))


def test_follow_refuses_a_json_answer() -> None:
    body = {"server_id": "h", "events": [], "next_after": 0}
    with pytest.raises(UnexpectedResponse, match="text/event-stream"):
        list(client(lambda _: answer(200, body)).follow(7))


def test_wait_polls_until_the_job_has_finished() -> None:
    states = iter(["queued", "running", "completed"])
    status = client(lambda _: answer(200, job_status(next(states)))).wait(
        7, timeout=5, interval=0.01
    )
    assert status.state is JobState.COMPLETED


def test_wait_is_bounded() -> None:
    started = datetime.now(UTC)
    with pytest.raises(WaitTimeout, match=r"job 7 is still running after waiting 0\.2s"):
        client(lambda _: answer(200, job_status("running"))).wait(7, timeout=0.2, interval=0.05)
    assert datetime.now(UTC) - started < timedelta(seconds=2)


def test_logs_events_stop_retry_and_tokens() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        route = (request.method, request.url.path)
        if route == ("GET", "/api/v1/jobs/7/logs"):
            assert request.url.params.multi_items() == [("task_id", "3"), ("step", "0")]
            return httpx.Response(200, text="hi\n")
        if route == ("GET", "/api/v1/jobs/7/events"):
            assert request.url.params.multi_items() == [("after", "4"), ("limit", "2")]
            return answer(200, {"server_id": "h", "events": [], "next_after": 4})
        if route == ("POST", "/api/v1/jobs/7/stop"):
            return answer(202, {"job_id": 7, "state": "cancelling", "server_id": "h"})
        if route == ("POST", "/api/v1/jobs/7/retry"):
            return answer(201, {"job_id": 8, "server_id": "h", "retried_from": 7})
        if route == ("POST", "/api/v1/tokens"):
            assert json.loads(request.content) == {"name": "ci", "role": "operator"}
            return answer(
                201,
                {
                    "token_id": 1,
                    "name": "ci",
                    "role": "operator",
                    "created_at": "2024-05-01T12:00:00Z",
                    "token": "tf_x",
                },
            )
        if route == ("GET", "/api/v1/tokens"):
            return answer(200, {"server_id": "h", "tokens": []})
        if route == ("DELETE", "/api/v1/tokens/1"):
            return httpx.Response(204)
        return answer(404, {"code": "not_found", "message": str(route)})

    hub = client(handler)
    assert hub.logs(7, task_id=3, step=0) == "hi\n"
    assert hub.events(7, after=4, limit=2).next_after == 4
    assert hub.stop(7).state is JobState.CANCELLING
    assert hub.retry(7) == 8
    assert hub.create_token("ci", "operator").token == "tf_x"
    assert hub.list_tokens().tokens == []
    hub.revoke_token(1)


class QuietThenTimeout(httpx.SyncByteStream):
    """Yields `body`, then stays quiet until the read times out."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.body
        raise httpx.ReadTimeout("quiet")


def test_follow_reopens_a_quiet_stream_and_survives_a_lost_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_settings, "backoff", lambda failures: 0.0)
    answers: list[Callable[[httpx.Request], httpx.Response]] = [
        lambda _: httpx.Response(
            200, stream=QuietThenTimeout(sse_body(1)), headers={"Content-Type": "text/event-stream"}
        ),
        lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused", request=request)),
        lambda _: stream(sse_body(2, end="completed")),
    ]
    afters: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        afters.append(request.url.params["after"])
        return answers[len(afters) - 1](request)

    assert [event.id for event in client(handler).follow(7)] == [1, 2]
    assert afters == ["0", "1", "1"]


def test_start_sends_a_key_and_sends_again_with_it_after_a_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from testfleet.client import retries

    monkeypatch.setattr(retries, "START_DELAYS", (0.0, 0.0, 0.0))
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) < 3:
            return answer(503, {"code": "store_unavailable", "message": "away"})
        return answer(201, {"job_id": 42, "server_id": "hub-1"})

    assert client(handler).start(DESCRIPTOR) == 42
    assert len(keys) == 3 and len(set(keys)) == 1 and len(keys[0]) >= 16


def test_start_gives_up_after_its_tries_and_never_retries_a_4xx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from testfleet.client import retries

    monkeypatch.setattr(retries, "START_DELAYS", (0.0, 0.0, 0.0))
    calls: list[int] = []

    def unavailable(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return answer(503, {"code": "event_timeout", "message": "busy"})

    with pytest.raises(ApiError) as raised:
        client(unavailable).start(DESCRIPTOR, idempotency_key="mine")
    assert raised.value.status == 503 and len(calls) == 4

    def refused(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return answer(422, {"code": "invalid_descriptor", "message": "no"})

    calls.clear()
    with pytest.raises(ApiError):
        client(refused).start(DESCRIPTOR)
    assert len(calls) == 1
