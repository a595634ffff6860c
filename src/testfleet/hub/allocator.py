"""Hand free devices to tests: first come, first served, each claim an atomic conditional
update in the store, candidates found in the hub's index of devices (`device_index.py`).

The index learns of this hub's changes from the signals its writers send (devices released,
jobs ended, agents whose devices changed: read again), and on PostgreSQL looks every second
at the devices other hubs changed (by their `changed_at`, with a margin for transactions that
commit late). A request that cannot be met yet does not block later ones that can.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from testfleet.hub.device_index import DeviceIndex
from testfleet.hub.signals import Signals
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.states import DeviceState
from testfleet.protocol.wire import utcnow
from testfleet.store import devices as device_store
from testfleet.store.db import Store
from testfleet.store.records import DeviceRecord

_log = logging.getLogger(__name__)
IDLE_POLL = 1.0  # seconds between rounds when nothing signals a change
REMOTE_POLL = 1.0  # seconds between looks at other hubs' changes (PostgreSQL)
REMOTE_MARGIN = timedelta(seconds=3)  # how far back each look starts (late commits)
LOAD_PAGE = 1000


@dataclass(frozen=True)
class Device:
    """A device claimed for a job."""

    id: str
    name: str
    agent_id: int
    agent_name: str


@dataclass(eq=False)
class _Request:
    job_id: int
    want: DeviceRequest
    avoid: frozenset[str]
    future: asyncio.Future[list[Device]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class DeviceAllocator:
    """Matches waiting requests to free devices in arrival order."""

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
        self._wake = signals.devices
        self._loaded = asyncio.Event()
        self._remote_since: datetime | None = None

    async def acquire(
        self, job_id: int, want: DeviceRequest, avoid: Collection[str] = ()
    ) -> list[Device]:
        """Wait until `want.count` matching devices are claimed for the job.

        Devices in `avoid` are taken only when no others match. Cancel the call to give up.
        """
        request = _Request(job_id=job_id, want=want, avoid=frozenset(avoid))
        self._waiting.append(request)
        self._wake.set()
        try:
            return await asyncio.shield(request.future)
        except asyncio.CancelledError:
            if request in self._waiting:
                self._waiting.remove(request)
            if request.future.done() and not request.future.cancelled():
                await self.release(job_id, [d.id for d in request.future.result()])
            raise

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
                if self._store.is_postgres and loop.time() >= next_remote:
                    next_remote = loop.time() + REMOTE_POLL
                    await self._remote_changes()
                if self._waiting:
                    await self._allocate()
            except Exception:
                _log.exception("device allocation failed; retrying")
                await asyncio.sleep(IDLE_POLL)

    async def _load(self) -> None:
        """Read the inventory a page at a time (never fleet-sized work at once)."""
        while True:
            try:
                self._remote_since = utcnow()
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
            records = await self._store.read(device_store.devices_of_agents, chunk)
            for agent_id in chunk:
                self.index.replace_agent(agent_id, [r for r in records if r.agent_id == agent_id])

    async def _remote_changes(self) -> None:
        """Devices other hubs changed (PostgreSQL: several hubs share the inventory)."""
        assert self._remote_since is not None
        started = utcnow()
        since = self._remote_since - REMOTE_MARGIN
        for record in await self._store.read(device_store.changed_since, since):
            self.index.put(record)
        self._remote_since = started

    async def _allocate(self) -> None:
        lease_until = utcnow() + timedelta(seconds=self._lease_ttl)
        grants: list[tuple[_Request, list[DeviceRecord]]] = []
        taken: set[str] = set()
        for request in list(self._waiting):
            if request.future.done():
                self._waiting.remove(request)
                continue
            chosen = self.index.find(request.want, request.avoid, taken, self._is_local)
            if chosen is None:
                continue
            taken.update(record.id for record in chosen)
            grants.append((request, chosen))
            if self.index.free_count <= len(taken):
                break
        if not grants:
            return
        claimed = await self._store.write(
            _claim, [(r.job_id, [row.id for row in c]) for r, c in grants], lease_until
        )
        for (request, chosen), ok in zip(grants, claimed, strict=True):
            if not ok:  # another hub was faster: read those devices again, and retry
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
                await self.release(request.job_id, [d.id for d in devices])
            else:
                request.future.set_result(devices)


def _claim(
    conn: Connection, wanted: list[tuple[int, list[str]]], lease_until: datetime
) -> list[bool]:
    """Claim each job's devices all-or-nothing; returns which claims succeeded."""
    return [device_store.claim_devices(conn, ids, job_id, lease_until) for job_id, ids in wanted]
