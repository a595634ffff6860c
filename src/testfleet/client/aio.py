"""The asyncio client (`httpx.AsyncClient`); the same methods as `Client`, awaitable."""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Self, TypeVar

import httpx

from testfleet.client import calls, responses, retries, session_calls, settings
from testfleet.client.automation import AsyncAutomationMethods
from testfleet.client.errors import ClientError, WaitTimeout
from testfleet.client.reconnect import Reconnect
from testfleet.client.results import AsyncResultsMethods
from testfleet.client.sse import EventFollower, check_event_stream
from testfleet.protocol.api import (
    Acknowledged,
    AgentList,
    DeviceList,
    EventList,
    EventRecord,
    JobList,
    JobStatus,
    JobSummary,
    Role,
    TokenCreated,
    TokenList,
    VersionInfo,
)
from testfleet.protocol.sessions import SessionCommands, SessionInfo, SessionList
from testfleet.protocol.states import JobState

T = TypeVar("T")


class AsyncEventStream(AsyncIterator[EventRecord]):
    """The events of one job as they happen; `final_state` is set once the job has ended."""

    def __init__(self, events: AsyncIterator[EventRecord], follower: EventFollower) -> None:
        self._events = events
        self._follower = follower

    @property
    def final_state(self) -> JobState | None:
        """The job's final state, once the stream has ended."""
        return self._follower.final_state

    async def __anext__(self) -> EventRecord:
        return await anext(self._events)

    async def aclose(self) -> None:
        """Stop following and close the connection."""
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class AsyncClient(AsyncResultsMethods, AsyncAutomationMethods):
    """An asyncio client of a testfleet hub's HTTP API.

    Every method raises `ApiError` when the hub answers with an error and `HubUnreachable` when
    it cannot be reached.
    """

    def __init__(
        self,
        base_url: str = settings.DEFAULT_HUB,
        token: str | None = None,
        timeout: float = settings.DEFAULT_TIMEOUT,
        *,
        requestor: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = settings.check_url(base_url)
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=settings.headers(token, requestor),
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _call(self, call: calls.Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method,
                call.path,
                params=call.params,
                content=call.content,
                headers=call.headers,
            )
        except httpx.TransportError as error:
            raise responses.unreachable(self.base_url, error) from None
        return call.parse(response)

    async def version(self) -> VersionInfo:
        """The hub's API version, package version and server id."""
        return await self._call(calls.version())

    async def start(
        self,
        descriptor: calls.Descriptor,
        params: Mapping[str, object] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> int:
        """Start a job (a dict, a JSON or YAML text, or a `JobDescriptor`); return its id.
        `params` override the descriptor's parameters.

        The request carries an idempotency key (a new one unless given) and is sent again,
        a few times, when the hub answers 503 or cannot be reached: never a second job."""
        call = calls.start(descriptor, params, idempotency_key or retries.new_key())
        for pause in retries.pauses():
            try:
                return await self._call(call)
            except ClientError as error:
                if pause is None or not retries.retriable(error):
                    raise
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def status(self, job_id: int) -> JobStatus:
        """The full status of a job."""
        return await self._call(calls.status(job_id))

    async def stop(self, job_id: int) -> Acknowledged:
        """Ask the hub to stop a job."""
        return await self._call(calls.stop(job_id))

    async def retry(self, job_id: int) -> int:
        """Start a job again from its descriptor; return the new job's id."""
        return await self._call(calls.retry(job_id))

    async def list(
        self,
        states: Iterable[str] = (),
        tags: Iterable[str] = (),
        requestor: str | None = None,
        name: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobList:
        """One page of jobs, newest first."""
        return await self._call(
            calls.list_jobs(
                states, tags, requestor, name, created_after, created_before, limit, cursor
            )
        )

    async def iter_jobs(
        self,
        states: Iterable[str] = (),
        tags: Iterable[str] = (),
        requestor: str | None = None,
        name: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        page_size: int = settings.PAGE_SIZE,
    ) -> AsyncIterator[JobSummary]:
        """Every matching job, newest first, fetching pages as needed."""
        states, tags = builtins.list(states), builtins.list(tags)
        cursor: str | None = None
        while True:
            page = await self.list(
                states, tags, requestor, name, created_after, created_before, page_size, cursor
            )
            for job in page.jobs:
                yield job
            if page.next_cursor is None or not page.jobs:
                return
            cursor = page.next_cursor

    async def events(self, job_id: int, after: int = 0, limit: int | None = None) -> EventList:
        """One page of a job's events with ids above `after`."""
        return await self._call(calls.events(job_id, after, limit))

    def follow(self, job_id: int, after: int = 0) -> AsyncEventStream:
        """A job's events with ids above `after`, live, until the job has ended.

        A broken stream is reopened from the last event received.
        """
        follower = EventFollower(job_id, after)
        return AsyncEventStream(self._follow(follower), follower)

    async def _follow(self, follower: EventFollower) -> AsyncIterator[EventRecord]:
        attempts = Reconnect(self.base_url)
        while True:
            attempts.attempt()
            call = calls.follow(follower.job_id, follower.last_id)
            try:
                async with self._http.stream(
                    call.method,
                    call.path,
                    params=call.params,
                    headers=call.headers,
                    timeout=settings.follow_timeout(self.timeout),
                ) as response:
                    if not response.is_success:
                        await response.aread()
                    call.parse(response)
                    check_event_stream(response)
                    attempts.opened()
                    async for chunk in response.aiter_bytes():
                        events = follower.feed(chunk)
                        if events:
                            attempts.received()
                        for event in events:
                            yield event
                        if follower.finished:
                            return
                delay = attempts.closed_early()
            except httpx.TransportError as error:
                delay = attempts.broken(error)
            follower.reconnecting()
            await asyncio.sleep(delay)

    async def logs(self, job_id: int, task_id: int | None = None, step: int | None = None) -> str:
        """A job's log output, optionally of one task and one step (by index)."""
        return await self._call(calls.logs(job_id, task_id, step))

    async def wait(
        self,
        job_id: int,
        timeout: float,  # noqa: ASYNC109 (as Client.wait; WaitTimeout names the last state)
        interval: float = 1.0,
    ) -> JobStatus:
        """Poll until the job has finished; raise `WaitTimeout` after `timeout` seconds."""
        started = time.monotonic()
        while True:
            status = await self.status(job_id)
            elapsed = time.monotonic() - started
            if status.state.finished:
                return status
            if elapsed >= timeout:
                raise WaitTimeout(job_id, status.state, timeout)
            await asyncio.sleep(min(settings.poll_interval(elapsed, interval), timeout - elapsed))

    async def agents(
        self, states: Iterable[str] = (), labels: Mapping[str, str] | None = None
    ) -> AgentList:
        """The agents the hub knows (every page), filtered by state and labels."""
        states = builtins.list(states)
        first = await self._call(calls.agents(states, labels))
        cursor = first.next_cursor
        while cursor is not None:
            page = await self._call(calls.agents(states, labels, cursor))
            first.agents.extend(page.agents)
            cursor = page.next_cursor
        first.next_cursor = None
        return first

    async def devices(
        self,
        states: Iterable[str] = (),
        agent: str | None = None,
        kind: str | None = None,
        labels: Mapping[str, str] | None = None,
        capabilities: Mapping[str, str] | None = None,
    ) -> DeviceList:
        """The devices of the agents (every page), filtered."""
        states = builtins.list(states)
        first = await self._call(calls.devices(states, agent, kind, labels, capabilities))
        cursor = first.next_cursor
        while cursor is not None:
            page = await self._call(
                calls.devices(states, agent, kind, labels, capabilities, cursor)
            )
            first.devices.extend(page.devices)
            cursor = page.next_cursor
        first.next_cursor = None
        return first

    async def sessions(
        self,
        state: str = "live",
        device: str | None = None,
        agent: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> SessionList:
        """WebDriver sessions through the gateway, newest first (`state`: live, all, or
        states comma-separated)."""
        return await self._call(session_calls.list_sessions(state, device, agent, limit, cursor))

    async def kill_session(self, key: str) -> SessionInfo:
        """End a session (by its number or WebDriver id): on its node, then its device."""
        return await self._call(session_calls.kill_session(key))

    async def session_commands(self, key: str, after: int = 0) -> SessionCommands:
        """A session's commands in order."""
        return await self._call(session_calls.session_commands(key, after))

    async def create_token(self, name: str, role: Role, agent: str | None = None) -> TokenCreated:
        """Create an API token; the answer is the only place its secret appears. An agent
        token may name the one agent it is for."""
        return await self._call(calls.create_token(name, role, agent))

    async def list_tokens(self) -> TokenList:
        """The API tokens (without their secrets)."""
        return await self._call(calls.list_tokens())

    async def revoke_token(self, token_id: int) -> None:
        """Revoke an API token."""
        await self._call(calls.revoke_token(token_id))
