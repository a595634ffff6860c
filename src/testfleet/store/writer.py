"""SQLite's writer: one thread, many write functions per transaction (group commit).

The queued functions run in one transaction. If one raises, that transaction rolls back and
each function runs again in a transaction of its own, so only the failing one fails: its
caller gets the exception, the others their results. Nobody hears back before a commit.
Write functions must therefore only change the store (and return values), nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from testfleet.store.events import discard_pending_events, flush_events

_log = logging.getLogger(__name__)
MAX_BATCH = 256


class Abandoned(Exception):
    """The caller gave up before its write began; nothing was written."""


@dataclass(eq=False)
class WriteRequest:
    """One write function waiting for the writer thread."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any] = field(init=False)
    abandoned: bool = False

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()


def _settle(outcomes: list[tuple[WriteRequest, bool, Any]]) -> None:
    for request, ok, value in outcomes:
        if request.future.done():
            continue
        if ok:
            request.future.set_result(value)
        else:
            request.future.set_exception(value)


class GroupCommitWriter:
    """Runs write functions on one connection, committing whatever has queued up together."""

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

    def close(self) -> None:
        """Finish the queued writes, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

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
            self._commit(batch)

    def _commit(self, batch: list[WriteRequest]) -> None:
        live = [request for request in batch if not request.abandoned]
        outcomes: list[tuple[WriteRequest, bool, Any]] = [
            (request, False, Abandoned()) for request in batch if request.abandoned
        ]
        try:
            outcomes += self._together(live)
        except Exception:
            # One of them failed: the whole transaction rolled back. Run each on its own so
            # only the failing one fails (write functions only touch the store, so running
            # them again is safe).
            for request in live:
                outcomes.append(self._alone(request))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[WriteRequest, bool, Any]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop is closed: nobody waits any more
                _log.debug("dropping %d write results for a closed loop", len(settled))

    def _together(self, batch: list[WriteRequest]) -> list[tuple[WriteRequest, bool, Any]]:
        """Every request in one transaction; raises (all rolled back) if any fails."""
        results = []
        with self.engine.begin() as conn:
            discard_pending_events(conn)
            try:
                for request in batch:
                    result = request.fn(conn, *request.args, **request.kwargs)
                    results.append((request, True, result))
                flush_events(conn)
            except BaseException:
                discard_pending_events(conn)
                raise
        return results

    def _alone(self, request: WriteRequest) -> tuple[WriteRequest, bool, Any]:
        try:
            return self._together([request])[0]
        except Exception as error:
            return request, False, error
