"""A quiet followed job's event stream carries keep-alive comments, and clients ignore them.

The hub runs in-process (uvicorn in a thread) so that its keep-alive interval can be set short
through `HubConfig`; no agent is connected, so a started job waits for devices and stays quiet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from testfleet.client import Client
from testfleet.hub.app import create_app
from testfleet.hub.config import HubConfig
from testfleet.hub.routes.jobs import KEEPALIVE_COMMENT
from testfleet.protocol.states import JobState
from tests.support.jobs import echo_job, start, wait_state
from tests.support.processes import free_port, wait_until

pytestmark = pytest.mark.integration

KEEPALIVE = 0.5


@pytest.fixture
def quiet_hub(tmp_path: Path) -> Iterator[str]:
    """The URL of an in-process hub without agents whose streams keep alive every 0.5 s."""
    port = free_port()
    config = HubConfig(
        port=port, data_dir=tmp_path, server_id="quiet", auth=False, sse_keepalive=KEEPALIVE
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(target=server.run, name="quiet-hub", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not thread.is_alive():
            raise AssertionError("the in-process hub exited")
        try:
            return httpx.get(url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 30, 0.05, "the in-process hub to be ready")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "the in-process hub did not stop"


def quiet_job(client: httpx.Client) -> int:
    """A job that waits for a device no agent offers, and so stores no events for a while
    (once its test has said why it waits: the reason is looked at again only every 5 s)."""
    job_id = start(client, echo_job("quiet"))
    wait_state(client, job_id, {"running"})  # its start events are stored

    def says_why() -> bool:
        runs = client.get(f"/api/v1/jobs/{job_id}").json()["runs"]
        return bool(runs and runs[0]["tests"] and runs[0]["tests"][0]["waiting"])

    wait_until(says_why, 10, 0.1, "the quiet job's test to say why it waits")
    return job_id


def _chunks(stream: httpx.Response) -> Iterator[str]:
    try:
        yield from stream.iter_text()
    except httpx.ReadTimeout:
        pytest.fail(f"the stream of a quiet job stayed silent for {KEEPALIVE + 5:g} s")


def test_a_quiet_followed_job_gets_keep_alive_comments(quiet_hub: str) -> None:
    with httpx.Client(base_url=quiet_hub, timeout=30) as client:
        job_id = quiet_job(client)
        path = f"/api/v1/jobs/{job_id}/events"
        quiet_limit = httpx.Timeout(30, read=KEEPALIVE + 5)
        with client.stream("GET", path, params={"follow": "true"}, timeout=quiet_limit) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            received: list[str] = []
            last_event_at = opened = time.monotonic()
            keepalives: list[float] = []
            buffer = ""
            for chunk in _chunks(stream):
                now = time.monotonic()
                buffer += chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    if block + "\n\n" == KEEPALIVE_COMMENT:
                        keepalives.append(now)
                    else:
                        assert not keepalives, f"an event after a keep-alive: {block!r}"
                        received.append(block)
                        last_event_at = now
                if len(keepalives) >= 2:
                    break
                assert now - opened < 20, f"keep-alives stopped coming; got {received!r}"
        assert "event: job_queued" in received[0]
        assert not any("event: end" in block for block in received)
        # Each comment follows about KEEPALIVE s of silence: not at every poll, nor much later.
        first, second = keepalives[:2]
        assert KEEPALIVE * 0.5 <= first - last_event_at < KEEPALIVE + 2
        assert KEEPALIVE * 0.5 <= second - first < KEEPALIVE + 2
        assert client.post(f"/api/v1/jobs/{job_id}/stop").status_code == 202


def test_the_client_follows_through_keep_alives_to_the_end(quiet_hub: str) -> None:
    with Client(quiet_hub, timeout=30) as hub:
        job_id = hub.start(echo_job("quiet-client"))
        stream = hub.follow(job_id)
        kinds: list[str] = []

        def stop() -> None:
            with Client(quiet_hub, timeout=30) as other:
                other.stop(job_id)

        stopper = threading.Timer(KEEPALIVE * 3.5, stop)
        stopper.start()
        try:
            kinds = [event.kind for event in stream]
        finally:
            stopper.cancel()
            stopper.join()
        assert stream.final_state is JobState.CANCELLED
        assert kinds[0] == "job_queued" and kinds[-1] == "job_finished"
