"""Hand free devices to tests and to gateway sessions: a fair queue (priority, then arrival),
each claim an atomic conditional update in the store, candidates found in the hub's index of
devices (`device_index.py`).

Two kinds of waiters share one queue: a job's test (`acquire`: `count` devices matching a
`DeviceRequest`, all or none) and a gateway session request (`acquire_for_session`: one
device matching a predicate, with a priority; it fails at once when no device in the
inventory could ever match). Either gives up by cancelling the call; a grant that crosses the
cancellation is given back. A request that cannot be met yet does not block later ones that
can.

The index learns of this hub's changes from the signals its writers send (devices released,
jobs ended, agents whose devices changed: read again) and, when a gateway session frees a
device (`freed`), from the devices changed since its last look; on PostgreSQL it also looks
every second at the devices other hubs changed (by their `changed_at`, with a margin for
transactions that commit late).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from testfleet.hub.device_index import DeviceIndex
from testfleet.hub.matching import matches
from testfleet.hub.signals import Signals
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.states import DeviceState
from testfleet.protocol.wire import utcnow
from testfleet.store import devices as device_store
from testfleet.store import driver_sessions as session_store
from testfleet.store.db import Store
from testfleet.store.records import DeviceRecord

__all__ = ["Device", "DeviceAllocator", "DeviceMatch", "NoDeviceCouldMatch", "matches"]
_log = logging.getLogger(__name__)
IDLE_POLL = 1.0  # seconds between rounds when nothing signals a change
REMOTE_POLL = 1.0  # seconds between looks at other hubs' changes (PostgreSQL)
REMOTE_MARGIN = timedelta(seconds=3)  # how far back each look starts (late commits)
LOAD_PAGE = 1000
PAGE = 500  # devices read at once when looking at changes

DeviceMatch = Callable[[DeviceRecord], bool]
"""Whether a device (with its agent's name and labels) will do."""
Preference = Callable[[DeviceRecord], Any]
"""A sort key among matching free devices: the lowest is taken."""


@dataclass(frozen=True)
class Device:
    """A device claimed for a job or a gateway session."""

    id: str
    name: str
    agent_id: int
    agent_name: str


class NoDeviceCouldMatch(Exception):
    """No device in the inventory (free, busy or offline) could ever satisfy a request."""

    def __init__(self, offered: list[tuple[dict[str, Any], int]]) -> None:
        self.offered = offered
        """What the inventory holds: each distinct set of capabilities, with how many devices."""
        if offered:
            kinds = "; ".join(
                f"{count} x {_describe(capabilities)}" for capabilities, count in offered
            )
            message = f"no device could ever match; the inventory offers: {kinds}"
        else:
            message = "no device could ever match: the inventory has no devices for this"
        super().__init__(message)


def _describe(capabilities: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in sorted(capabilities.items())) + "}"


@dataclass(eq=False)
class _Request:
    """One waiter: a job's test (`job_id`, `want`) or a gateway session (`session_row`,
    `match`)."""

    rank: tuple[int, int]
    """(-priority, arrival): the queue's order."""
    job_id: int | None = None
    want: DeviceRequest | None = None
    avoid: frozenset[str] = frozenset()
    session_row: int | None = None
    match: DeviceMatch | None = None
    prefer: Preference | None = None
    future: asyncio.Future[list[Device]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class DeviceAllocator:
    """Matches waiting requests to free devices, by priority then arrival."""

    def __init__(
        self,
        store: Store,
        signals: Signals,
        lease_ttl: float,
        is_local: Callable[[int], bool] | None = None,
    ) -> None:
        self.index = DeviceIndex()
        self._store = store
        self._signals = signals
        self._lease_ttl = lease_ttl
        self._is_local = is_local
        self._waiting: list[_Request] = []
        self._arrivals = itertools.count()
        self._wake = signals.devices
        self._loaded = asyncio.Event()
        self._changed_since: datetime | None = None
        # When each device the last looks found changed (so the next skips what it knows).
        self._seen: dict[str, datetime] = {}
        self._look_again = False

    @property
    def waiting(self) -> int:
        """How many requests wait for devices on this hub."""
        return len(self._waiting)

    async def acquire(
        self, job_id: int, want: DeviceRequest, avoid: Collection[str] = ()
    ) -> list[Device]:
        """Wait until `want.count` matching devices are claimed for the job.

        Devices in `avoid` are taken only when no others match. Cancel the call to give up.
        """
        request = _Request(
            rank=(0, next(self._arrivals)), job_id=job_id, want=want, avoid=frozenset(avoid)
        )
        return await self._wait(request)

    async def acquire_for_session(
        self,
        session_row: int,
        match: DeviceMatch,
        *,
        priority: int = 0,
        prefer: Preference | None = None,
    ) -> Device:
        """Wait in the queue until one device matching `match` is claimed for the gateway
        session `session_row` (a queued row of `driver_sessions`, which moves to `creating`).

        Higher `priority` goes first, equal priorities in arrival order; among free matching
        devices the one with the lowest `prefer` key is taken. Raises NoDeviceCouldMatch at
        once when no device of the inventory, in any state, could ever match. Cancel the call
        to leave the queue (the client went away, or its timeout passed).
        """
        await self._loaded.wait()
        if not any(match(row) for row in self.index.devices()):
            # The index may not have caught up with an agent that just registered: the store
            # decides (read only when the index knows no match: rare, and then final).
            inventory = await self._store.read(device_store.list_devices)
            if not any(match(row) for row in inventory):
                raise NoDeviceCouldMatch(_summary(row for row in inventory if row.url))
        request = _Request(
            rank=(-priority, next(self._arrivals)),
            session_row=session_row,
            match=match,
            prefer=prefer or (lambda row: row.id),
        )
        (device,) = await self._wait(request)
        return device

    def freed(self) -> None:
        """A gateway session gave a device back (here or on another hub): read the devices
        changed since the last look, and look at the queue again."""
        self._look_again = True
        self._wake.set()

    async def _wait(self, request: _Request) -> list[Device]:
        bisect.insort(self._waiting, request, key=lambda r: r.rank)
        self._wake.set()
        try:
            return await asyncio.shield(request.future)
        except asyncio.CancelledError:
            if request in self._waiting:
                self._waiting.remove(request)
            if request.future.done() and not request.future.cancelled():
                await self._give_back(request, request.future.result())
            raise

    async def _give_back(self, request: _Request, devices: list[Device]) -> None:
        if request.job_id is not None:
            await self.release(request.job_id, [d.id for d in devices])
        elif request.session_row is not None:
            await self._store.write(
                session_store.finish,
                request.session_row,
                "the client left the queue",
                utcnow(),
                state=session_store.FAILED,
            )
            self._signals.devices_released([d.id for d in devices])

    async def release(self, job_id: int, device_ids: Sequence[str]) -> None:
        """Give devices back."""
        if not device_ids:
            return
        await self._store.write(device_store.release_devices, device_ids, job_id)
        self._signals.devices_released(device_ids)

    async def wait_loaded(self) -> None:
        """Until the index holds the inventory."""
        await self._loaded.wait()

    async def run(self) -> None:
        """Load the index, then allocate as devices change and requests come, until
        cancelled."""
        await self._load()
        loop = asyncio.get_running_loop()
        next_remote = loop.time()
        while True:
            try:
                async with asyncio.timeout(IDLE_POLL):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._catch_up()
                remote_due = self._store.is_postgres and loop.time() >= next_remote
                if remote_due or self._look_again:
                    self._look_again = False
                    next_remote = loop.time() + REMOTE_POLL
                    await self._read_changes()
                if self._waiting:
                    await self._allocate()
            except Exception:
                _log.exception("device allocation failed; retrying")
                await asyncio.sleep(IDLE_POLL)

    async def _load(self) -> None:
        """Read the inventory a page at a time (never fleet-sized work at once)."""
        while True:
            try:
                self._changed_since = utcnow()
                after = ""
                while page := await self._store.read(device_store.device_page, after, LOAD_PAGE):
                    for record in page:
                        self.index.put(record)
                    after = page[-1].id
                    await asyncio.sleep(0)
                break
            except Exception:
                _log.warning("cannot read the inventory yet; trying again", exc_info=True)
                await asyncio.sleep(IDLE_POLL)
        self._loaded.set()
        _log.info("device index: %d devices, %d free", len(self.index), self.index.free_count)

    async def _catch_up(self) -> None:
        """Apply what this hub's writers changed since the last round."""
        for device_id in self._signals.take_released():
            self.index.set_state(device_id, DeviceState.FREE, None)
        for job_id in self._signals.take_released_jobs():
            for device_id in self.index.held_by(job_id):
                self.index.set_state(device_id, DeviceState.FREE, None)
        agents = sorted(self._signals.take_changed_agents())
        for start in range(0, len(agents), 100):
            chunk = agents[start : start + 100]
            by_agent: dict[int, list[DeviceRecord]] = {agent_id: [] for agent_id in chunk}
            for record in await self._store.read(device_store.devices_of_agents, chunk):
                by_agent[record.agent_id].append(record)
            for agent_id, records in by_agent.items():
                self.index.replace_agent(agent_id, records)

    async def _read_changes(self) -> None:
        """Devices changed since the last look: by other hubs (PostgreSQL: several hubs
        share the inventory), or freed by gateway sessions.

        Each look goes back `REMOTE_MARGIN` (for late commits), so most of what it finds
        it has seen before: it reads when each device changed first, a page at a time, and
        the whole rows only of changes it has not seen."""
        assert self._changed_since is not None
        started = utcnow()
        since = self._changed_since - REMOTE_MARGIN
        seen = {device_id: at for device_id, at in self._seen.items() if at >= since}
        after = ""
        while marks := await self._store.read(device_store.change_marks, since, after, PAGE):
            unseen = [device_id for device_id, at in marks if seen.get(device_id) != at]
            seen.update(marks)
            if unseen:
                for record in await self._store.read(device_store.devices_with_ids, unseen):
                    self.index.put(record)
            if len(marks) < PAGE:
                break
            after = marks[-1][0]
            await asyncio.sleep(0)
        self._seen = seen
        self._changed_since = started

    def _choose(self, request: _Request, taken: set[str]) -> list[DeviceRecord] | None:
        if request.want is not None:
            return self.index.find(request.want, request.avoid, taken, self._is_local)
        assert request.match is not None and request.prefer is not None
        match = request.match
        candidates = [r for r in self.index.free_devices() if r.id not in taken and match(r)]
        return [min(candidates, key=request.prefer)] if candidates else None

    async def _allocate(self) -> None:
        lease_until = utcnow() + timedelta(seconds=self._lease_ttl)
        grants: list[tuple[_Request, list[DeviceRecord]]] = []
        taken: set[str] = set()
        for request in list(self._waiting):
            if request.future.done():
                self._waiting.remove(request)
                continue
            chosen = self._choose(request, taken)
            if chosen is None:
                continue
            taken.update(record.id for record in chosen)
            grants.append((request, chosen))
            if self.index.free_count <= len(taken):
                break
        if not grants:
            return
        claimed = await self._store.write(
            _claim,
            [(r.job_id, r.session_row, [row.id for row in c]) for r, c in grants],
            lease_until,
        )
        for (request, chosen), ok in zip(grants, claimed, strict=True):
            if not ok:  # another hub was faster (or the session was given up): read again
                self._signals.devices_changed(*{row.agent_id for row in chosen})
                continue
            self._waiting.remove(request)
            for row in chosen:
                self.index.set_state(row.id, DeviceState.BUSY, request.job_id)
            devices = [
                Device(id=row.id, name=row.name, agent_id=row.agent_id, agent_name=row.agent_name)
                for row in chosen
            ]
            if request.future.done():  # the waiter gave up meanwhile
                await self._give_back(request, devices)
            else:
                request.future.set_result(devices)


def _summary(rows: Iterable[DeviceRecord]) -> list[tuple[dict[str, Any], int]]:
    """Each distinct set of capabilities among `rows` with how many devices offer it, most
    common first."""
    kinds: dict[str, dict[str, Any]] = {}
    counts: Counter[str] = Counter()
    for row in rows:
        key = repr(sorted(row.capabilities.items()))
        kinds.setdefault(key, row.capabilities)
        counts[key] += 1
    return [(kinds[key], count) for key, count in counts.most_common()]


def _claim(
    conn: Connection, wanted: list[tuple[int | None, int | None, list[str]]], lease_until: datetime
) -> list[bool]:
    """Claim each waiter's devices all-or-nothing (a job's with a lease, a gateway session's
    with its session row); returns which claims succeeded."""
    now = utcnow()
    results = []
    for job_id, session_row, ids in wanted:
        if session_row is not None:
            results.append(session_store.claim_device(conn, session_row, ids[0], now))
        else:
            results.append(device_store.claim_devices(conn, ids, job_id, lease_until))
    return results
