"""The Python client of a testfleet hub's HTTP API (`Client` blocks, `AsyncClient` awaits).

from testfleet.client import Client

with Client("http://127.0.0.1:8470", token="...") as hub:
    job_id = hub.start(open("job.yaml").read())
    for event in hub.follow(job_id):
        print(event.kind, event.data)
"""

from testfleet.client.aio import AsyncClient, AsyncEventStream
from testfleet.client.calls import Descriptor
from testfleet.client.errors import (
    ApiError,
    ClientError,
    HubUnreachable,
    UnexpectedResponse,
    WaitTimeout,
)
from testfleet.client.settings import DEFAULT_HUB, DEFAULT_TIMEOUT
from testfleet.client.sse import END_EVENT, ServerSentEvent, SseDecoder
from testfleet.client.sync import Client, EventStream

__all__ = [
    "DEFAULT_HUB",
    "DEFAULT_TIMEOUT",
    "END_EVENT",
    "ApiError",
    "AsyncClient",
    "AsyncEventStream",
    "Client",
    "ClientError",
    "Descriptor",
    "EventStream",
    "HubUnreachable",
    "ServerSentEvent",
    "SseDecoder",
    "UnexpectedResponse",
    "WaitTimeout",
]
