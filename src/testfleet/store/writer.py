"""The store's writers: many write functions per transaction (group commit).

The functions queued up by the time the writer is free run in one transaction. If one raises,
that transaction rolls back and each function runs again in a transaction of its own, so
only the failing one fails: its caller gets the exception, the others their results. Nobody
hears back before a commit. Write functions must therefore only change the store (and return
values), nothing else.

SQLite's writer is a thread with one connection (transactions begin IMMEDIATE); PostgreSQL's
are a few asyncio tasks on the async engine, committing side by side and retrying a batch
that hit a deadlock. Event ids still commit in order (see `events.py`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from testfleet.store.events import discard_pending_events, flush_events

_log = logging.getLogger(__name__)
MAX_BATCH = 256
POSTGRES_WRITERS = 2
RETRIES = 5
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure
# The server is shutting down, crashed, starting, or has no room for another connection.
_AWAY_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "53400"})

Outcome = tuple["WriteRequest", bool, Any]


class Abandoned(Exception):
    """The caller gave up before its write began; nothing was written."""


class CommitUnknown(Exception):
    """The connection broke while the transaction committed: it may or may not have.

    Its writes are not run again (that could apply them twice); each caller gets this error.
    """


@dataclass(eq=False)
class WriteRequest:
    """One write function waiting for the writer."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any] = field(init=False)
    abandoned: bool = False

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()


def is_unavailable(error: BaseException) -> bool:
    """The database could not be reached, refuses connections for now, or the connection
    broke: nothing is wrong with the work itself, which may succeed later."""
    if isinstance(error, CommitUnknown | ConnectionError | TimeoutError):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated or isinstance(error, OperationalError):
            return True
        code = _sqlstate(error)
        if code is not None and (code.startswith("08") or code in _AWAY_SQLSTATES):
            return True
        return code == "55000" and "not currently accepting connections" in str(error)
    return False


def _sqlstate(error: DBAPIError) -> str | None:
    """PostgreSQL's SQLSTATE of a wrapped driver error, if it has one."""
    original = error.orig
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if code is None and original is not None:
        code = getattr(getattr(original, "__cause__", None), "sqlstate", None)
    return code if isinstance(code, str) else None


def is_transient(error: BaseException) -> bool:
    """A PostgreSQL error that running the transaction again may not meet."""
    return isinstance(error, DBAPIError) and _sqlstate(error) in _TRANSIENT_SQLSTATES


def run_batch(conn: Connection, batch: list[WriteRequest]) -> list[Outcome]:
    """Run every request on `conn` (inside a transaction), then insert the events they added;
    raises if any request does (the caller rolls back)."""
    discard_pending_events(conn)
    try:
        results = [
            (request, True, request.fn(conn, *request.args, **request.kwargs)) for request in batch
        ]
        flush_events(conn)
    except BaseException:
        discard_pending_events(conn)
        raise
    return results


def _settle(outcomes: list[Outcome]) -> None:
    for request, ok, value in outcomes:
        if request.future.done():
            continue
        if ok:
            request.future.set_result(value)
        else:
            request.future.set_exception(value)


def _split(batch: list[WriteRequest]) -> tuple[list[WriteRequest], list[Outcome]]:
    live = [request for request in batch if not request.abandoned]
    gone: list[Outcome] = [(r, False, Abandoned()) for r in batch if r.abandoned]
    return live, gone


class SqliteWriter:
    """A thread with one connection, committing whatever has queued up together."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[WriteRequest | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> WriteRequest:
        """Queue a write; await `request.future` for its result."""
        request = WriteRequest(fn, args, kwargs, asyncio.get_running_loop())
        self._queue.put(request)
        return request

    async def close(self) -> None:
        """Finish the queued writes, then stop the thread."""
        self._queue.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._deliver(self._commit(batch))

    def _commit(self, batch: list[WriteRequest]) -> list[Outcome]:
        live, outcomes = _split(batch)
        try:
            return outcomes + self._together(live)
        except Exception:
            return outcomes + [self._alone(request) for request in live]

    def _together(self, batch: list[WriteRequest]) -> list[Outcome]:
        with self.engine.begin() as conn:
            return run_batch(conn, batch)

    def _alone(self, request: WriteRequest) -> Outcome:
        try:
            return self._together([request])[0]
        except Exception as error:
            return request, False, error

    @staticmethod
    def _deliver(outcomes: list[Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop is closed: nobody waits any more
                _log.debug("dropping %d write results for a closed loop", len(settled))


class PostgresWriter:
    """Asyncio tasks, each committing whatever has queued up when it is free, on the async
    engine. Several run at once: most of a transaction's time is spent waiting on round trips
    to the server, which the others use. Each caller's writes stay in order, since a caller
    waits for one write before it submits the next."""

    def __init__(self, engine: AsyncEngine, writers: int = POSTGRES_WRITERS) -> None:
        self.engine = engine
        self.writers = writers
        self._queue: asyncio.Queue[WriteRequest] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> WriteRequest:
        """Queue a write; await `request.future` for its result."""
        request = WriteRequest(fn, args, kwargs, asyncio.get_running_loop())
        self._queue.put_nowait(request)
        if not self._tasks or any(task.done() for task in self._tasks):
            self._tasks = [task for task in self._tasks if not task.done()]
            self._tasks += [
                asyncio.create_task(self._run(), name=f"store-writer-{n}")
                for n in range(len(self._tasks), self.writers)
            ]
        return request

    async def close(self) -> None:
        """Finish the queued writes, then stop."""
        if not self._tasks:
            return
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live, outcomes = _split(batch)
            try:
                outcomes += await self._together(live)
            except CommitUnknown as error:
                outcomes += [(request, False, error) for request in live]
            except Exception:
                for request in live:
                    try:
                        outcomes += await self._together([request])
                    except Exception as error:
                        outcomes.append((request, False, error))
            _settle(outcomes)
            for _ in batch:
                self._queue.task_done()

    async def _together(self, batch: list[WriteRequest]) -> list[Outcome]:
        """Run the batch in one transaction; again after a deadlock, or when the pooled
        connection turns out dead (the server restarted: nothing was written)."""
        for attempt in range(1, RETRIES + 1):
            try:
                return await self._transaction(batch)
            except DBAPIError as error:
                retry = is_transient(error) or error.connection_invalidated
                if attempt == RETRIES or not retry:
                    raise
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
        raise AssertionError("unreachable")

    async def _transaction(self, batch: list[WriteRequest]) -> list[Outcome]:
        async with self.engine.connect() as conn:
            transaction = await conn.begin()
            results = await conn.run_sync(run_batch, batch)
            try:
                await transaction.commit()
            except DBAPIError as error:
                if error.connection_invalidated:
                    raise CommitUnknown(
                        f"the database connection broke while committing: {error}"
                    ) from error
                raise
            return results
