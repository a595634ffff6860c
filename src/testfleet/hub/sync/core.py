"""The sync service inside one hub: requests batched per name into the engine, barriers
released and subscribers fed from what the engine says (here, or from other hubs).

Signals (and publishes) of one state (topic) that arrive together go to the engine as one
batch; batches of one name run one after another, so sequence numbers follow arrival order.
A barrier registers its waiter before it reads the count, and every change raises the count
it knows, so none is missed. A topic with subscribers here has a feed: the messages from its
last known seq on, filled from local publishes and, for other hubs' publishes, by one read per
notification.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from testfleet.hub.sync.engine import SyncEngine
from testfleet.protocol.sync import SyncError
from testfleet.store.sync_state import STATE, TOPIC

_log = logging.getLogger(__name__)
FEED_KEEP = 50_000
READ_PAGE = 2000


class SyncFailure(Exception):
    """A request the sync service could not carry out."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = SyncError(id=None, code=code, message=message)


@dataclass(eq=False)
class _Batch:
    items: list[tuple[str | None, str, asyncio.Future[int]]] = field(default_factory=list)
    flushing: bool = False


@dataclass(eq=False)
class StateWatch:
    """A state with barriers waiting here: the highest count known, and the waiters."""

    count: int = 0
    waiters: list[tuple[int, asyncio.Future[int]]] = field(default_factory=list)

    def raise_to(self, value: int) -> None:
        """The count is at least `value`: release the barriers it reaches."""
        if value <= self.count:
            return
        self.count = value
        still = []
        for target, future in self.waiters:
            if target <= value:
                if not future.done():
                    future.set_result(value)
            else:
                still.append((target, future))
        self.waiters = still


@dataclass(eq=False)
class TopicFeed:
    """A topic with subscribers here: its messages from `first` to `last`, in order."""

    first: int = 1
    buffer: list[tuple[int, str]] = field(default_factory=list)
    known: int = 0
    """The highest seq known to exist (may be ahead of the buffer until it is read)."""
    subscribers: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    filling: bool = False
    memory: list[tuple[int, str]] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the feed knows where the topic stood when it was made."""

    @property
    def last(self) -> int:
        """The highest seq held."""
        if self.memory is not None:
            return len(self.memory)
        return self.first + len(self.buffer) - 1

    def append(self, items: list[tuple[int, str]]) -> None:
        """Add messages that follow on (others are ignored: a read fills gaps)."""
        if self.memory is None:
            for item in items:
                if item[0] == self.last + 1:
                    self.buffer.append(item)
            if len(self.buffer) > FEED_KEEP:
                drop = len(self.buffer) - FEED_KEEP // 2
                del self.buffer[:drop]
                self.first += drop
        self.known = max(self.known, self.last)
        self.wake()

    def wake(self) -> None:
        """Tell the subscribers there is news."""
        self.changed.set()
        self.changed = asyncio.Event()

    def held_after(self, cursor: int, limit: int) -> list[tuple[int, str]] | None:
        """Messages after `cursor` from what is held; None when `cursor` is before it."""
        if self.memory is not None:
            return self.memory[cursor : cursor + limit]
        if cursor < self.first - 1:
            return None
        start = cursor - self.first + 1
        return self.buffer[start : start + limit]


class SyncCore:
    """Barriers, signals and topics of every run, over one engine."""

    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self._batches: dict[tuple[str, str, str], _Batch] = {}
        self._watches: dict[tuple[str, str], StateWatch] = {}
        self._feeds: dict[tuple[str, str], TopicFeed] = {}
        self._background: set[asyncio.Task[Any]] = set()
        engine.watch(self._heard, self._resync)

    # ---- signals and publishes ---------------------------------------------------------------

    def signal(self, run: str, state: str, key: str | None) -> asyncio.Future[int]:
        """Count an entry into `state`; the future holds its seq."""
        return self._enqueue(STATE, run, state, key, "")

    def publish(self, run: str, topic: str, key: str | None, payload: str) -> asyncio.Future[int]:
        """Append a payload (JSON text) to `topic`; the future holds its seq."""
        return self._enqueue(TOPIC, run, topic, key, payload)

    def _enqueue(
        self, kind: str, run: str, name: str, key: str | None, payload: str
    ) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        batch = self._batches.setdefault((kind, run, name), _Batch())
        batch.items.append((key, payload, future))
        if not batch.flushing:
            batch.flushing = True
            self._spawn(self._flush(kind, run, name, batch))
        return future

    async def _flush(self, kind: str, run: str, name: str, batch: _Batch) -> None:
        try:
            while batch.items:
                items, batch.items = batch.items, []
                try:
                    if kind == STATE:
                        seqs, count = await self.engine.signal(run, name, [i[0] for i in items])
                    else:
                        seqs = await self.engine.publish(run, name, [(i[0], i[1]) for i in items])
                except Exception as error:  # the engine's store is away: say so, keep serving
                    _log.warning("sync %s %s/%s failed: %r", kind, run, name, error)
                    for _, _, future in items:
                        if not future.done():
                            future.set_exception(
                                SyncFailure("unavailable", f"try again: {error!r}")
                            )
                    continue
                for (_, _, future), seq in zip(items, seqs, strict=True):
                    if not future.done():
                        future.set_result(seq)
                if kind == STATE:
                    watch = self._watches.get((run, name))
                    if watch is not None:
                        watch.raise_to(count)
                else:
                    feed = self._feeds.get((run, name))
                    if feed is not None:
                        feed.append([(s, i[1]) for s, i in zip(seqs, items, strict=True)])
                        if feed.known > feed.last:
                            self._fill(run, name, feed)
        finally:
            batch.flushing = False
            if not batch.items:
                self._batches.pop((kind, run, name), None)

    # ---- barriers ----------------------------------------------------------------------------

    async def barrier(self, run: str, state: str, target: int, timeout: float | None) -> int:  # noqa: ASYNC109 (the sync API's own timeout)
        """Wait until `state` has `target` entries; the count reached. SyncFailure on timeout."""
        key = (run, state)
        watch = self._watches.setdefault(key, StateWatch())
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        watch.waiters.append((target, future))
        try:
            if watch.count < target:
                watch.raise_to(await self.engine.counter(run, STATE, state))
            else:
                watch.raise_to(watch.count)  # releases the new waiter
                if not future.done():
                    future.set_result(watch.count)
            try:
                async with asyncio.timeout(timeout):
                    return await future
            except TimeoutError:
                raise SyncFailure(
                    "timeout", f"barrier {state!r}: {watch.count} of {target} after {timeout:g} s"
                ) from None
        finally:
            watch.waiters = [w for w in watch.waiters if w[1] is not future]
            if not watch.waiters and self._watches.get(key) is watch:
                del self._watches[key]

    # ---- subscriptions -----------------------------------------------------------------------

    async def follow(
        self,
        run: str,
        topic: str,
        after: int,
        deliver: Callable[[list[tuple[int, str]]], Awaitable[None]],
    ) -> None:
        """Hand `deliver` every message after `after`, in pages, then live ones; until cancelled."""
        key = (run, topic)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = TopicFeed(memory=self.engine.log(run, topic))
            if feed.memory is None:
                try:
                    last = await self.engine.counter(run, TOPIC, topic)
                except BaseException:
                    del self._feeds[key]
                    feed.ready.set()
                    raise
                if not feed.buffer:  # nothing arrived meanwhile: hold from the next one on
                    feed.first = last + 1
                feed.known = max(feed.known, last)
            feed.ready.set()
        feed.subscribers += 1
        cursor = after
        try:
            await feed.ready.wait()
            if self._feeds.get(key) is not feed:
                raise SyncFailure("unavailable", f"topic {topic!r} could not be read; try again")
            while True:
                changed = feed.changed
                page = feed.held_after(cursor, READ_PAGE)
                if page is None:
                    page = await self.engine.read(run, topic, cursor, READ_PAGE)
                if page:
                    await deliver(page)
                    cursor = page[-1][0]
                    continue
                await changed.wait()
        finally:
            feed.subscribers -= 1
            if feed.subscribers == 0 and self._feeds.get(key) is feed:
                del self._feeds[key]

    # ---- other hubs --------------------------------------------------------------------------

    def _heard(self, run: str, kind: str, name: str, value: int) -> None:
        if kind == STATE:
            watch = self._watches.get((run, name))
            if watch is not None:
                watch.raise_to(value)
            return
        feed = self._feeds.get((run, name))
        if feed is not None and value > feed.known:
            feed.known = value
            # A flush of this topic under way here (our own publish, heard before its commit
            # returned) appends its messages, then reads whatever else it does not hold.
            if (TOPIC, run, name) not in self._batches:
                self._fill(run, name, feed)

    def _fill(self, run: str, topic: str, feed: TopicFeed) -> None:
        if feed.filling or feed.memory is not None:
            return
        feed.filling = True

        async def fill() -> None:
            try:
                while feed.last < feed.known:
                    page = await self.engine.read(run, topic, feed.last, READ_PAGE)
                    if not page:
                        break
                    feed.append(page)
            except Exception:
                _log.exception("sync: cannot read %s/%s", run, topic)
            finally:
                feed.filling = False

        self._spawn(fill())

    def _resync(self) -> None:
        """After a gap in hearing other hubs: read what is watched again."""

        async def again() -> None:
            for (run, state), watch in list(self._watches.items()):
                watch.raise_to(await self.engine.counter(run, STATE, state))
            for run, topic in list(self._feeds):
                self._heard(run, TOPIC, topic, await self.engine.counter(run, TOPIC, topic))

        self._spawn(again())

    # ---- views and upkeep --------------------------------------------------------------------

    def waiting(self, run: str) -> dict[str, dict[int, int]]:
        """Barriers waiting here, per state: target -> how many."""
        found: dict[str, dict[int, int]] = {}
        for (r, state), watch in self._watches.items():
            if r == run:
                targets = found.setdefault(state, {})
                for target, _ in watch.waiters:
                    targets[target] = targets.get(target, 0) + 1
        return found

    def subscribers(self, run: str) -> dict[str, int]:
        """Subscribers here, per topic."""
        return {t: f.subscribers for (r, t), f in self._feeds.items() if r == run}

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
