"""Hand free devices to tests and to gateway sessions: a fair queue (priority, then arrival),
each claim an atomic conditional update in the store.

Two kinds of waiters share one queue: a job's test (`acquire`: `count` devices matching a
`DeviceRequest`, all or none) and a gateway session request (`acquire_for_session`: one
device matching a predicate, with a priority; it fails at once when no device in the
inventory could ever match). Either gives up by cancelling the call; a grant that crosses the
cancellation is given back.
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

from testfleet.hub.signals import Signals
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.wire import utcnow
from testfleet.store import devices as device_store
from testfleet.store import driver_sessions as session_store
from testfleet.store.db import Store
from testfleet.store.records import DeviceRecord

_log = logging.getLogger(__name__)
_IDLE_POLL = 1.0

DeviceMatch = Callable[[DeviceRecord], bool]
"""Whether a device (with its agent's name and labels) will do."""
Preference = Callable[[DeviceRecord], Any]
"""A sort key among matching free devices: the lowest is taken."""


@dataclass(frozen=True)
class Device:
    """A device claimed for a job."""

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
    """One waiter: a job's test (`job_id`) or a gateway session (`session_row`)."""

    match: DeviceMatch
    count: int
    prefer: Preference
    rank: tuple[int, int]
    """(-priority, arrival): the queue's order."""
    job_id: int | None = None
    session_row: int | None = None
    future: asyncio.Future[list[Device]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def matches(want: DeviceRequest, row: DeviceRecord) -> bool:
    """Whether a free device (with its agent's labels) satisfies the request."""
    if want.kind is not None and row.kind != want.kind:
        return False
    if want.names and row.name not in want.names and row.id not in want.names:
        return False
    labels = {**(row.agent_labels or {}), **(row.labels or {})}
    if any(labels.get(key) != value for key, value in want.labels.items()):
        return False
    capabilities = row.capabilities or {}
    for key, value in want.capabilities.items():
        have = capabilities.get(key)
        if isinstance(value, str) and isinstance(have, str):
            if value.lower() != have.lower():
                return False
        elif have != value:
            return False
    return True


class DeviceAllocator:
    """Matches waiting requests to free devices in arrival order; a request that cannot be
    met yet does not block later ones that can."""

    def __init__(self, store: Store, signals: Signals, lease_ttl: float) -> None:
        self._store = store
        self._lease_ttl = lease_ttl
        self._waiting: list[_Request] = []
        self._arrivals = itertools.count()
        self._wake = signals.devices

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
        shun = frozenset(avoid)
        request = _Request(
            match=lambda row: matches(want, row),
            count=want.count,
            prefer=lambda row: row.id in shun,
            rank=(0, next(self._arrivals)),
            job_id=job_id,
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
        inventory = await self._store.read(device_store.list_devices)
        if not any(match(row) for row in inventory):
            raise NoDeviceCouldMatch(_summary(row for row in inventory if row.url))
        request = _Request(
            match=match,
            count=1,
            prefer=prefer or (lambda row: row.id),
            rank=(-priority, next(self._arrivals)),
            session_row=session_row,
        )
        (device,) = await self._wait(request)
        return device

    def freed(self) -> None:
        """Devices were given back (or added) elsewhere: look at the queue again now."""
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
            self._wake.set()

    async def release(self, job_id: int, device_ids: Sequence[str]) -> None:
        """Give devices back."""
        if not device_ids:
            return
        await self._store.write(device_store.release_devices, device_ids, job_id)
        self._wake.set()

    async def run(self) -> None:
        """The allocation loop."""
        while True:
            try:
                async with asyncio.timeout(_IDLE_POLL):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._waiting:
                try:
                    await self._allocate()
                except Exception:
                    _log.exception("device allocation failed; retrying")
                    await asyncio.sleep(_IDLE_POLL)

    async def _allocate(self) -> None:
        free = await self._store.read(device_store.free_devices)
        if not free:
            return
        lease_until = utcnow() + timedelta(seconds=self._lease_ttl)
        grants: list[tuple[_Request, list[DeviceRecord]]] = []
        for request in list(self._waiting):
            if request.future.done():
                self._waiting.remove(request)
                continue
            candidates = [row for row in free if request.match(row)]
            if len(candidates) < request.count:
                continue
            candidates.sort(key=request.prefer)
            chosen = candidates[: request.count]
            taken = {row.id for row in chosen}
            free = [row for row in free if row.id not in taken]
            grants.append((request, chosen))
            if not free:
                break
        if not grants:
            return
        claimed = await self._store.write(
            _claim,
            [(r.job_id, r.session_row, [row.id for row in c]) for r, c in grants],
            lease_until,
        )
        granted = [grant for grant, ok in zip(grants, claimed, strict=True) if ok]
        if len(granted) < len(grants):  # another hub was faster: try again next round
            self._wake.set()
        for request, chosen in granted:
            self._waiting.remove(request)
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
