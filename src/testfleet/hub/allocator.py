"""Hand free devices to tests: first come, first served, each claim an atomic conditional update."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from testfleet.hub.signals import Signals
from testfleet.protocol.descriptor import DeviceRequest
from testfleet.protocol.wire import utcnow
from testfleet.store import devices as device_store
from testfleet.store.db import Store
from testfleet.store.records import DeviceRecord

_log = logging.getLogger(__name__)
_IDLE_POLL = 1.0


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
        self._wake = signals.devices

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
            candidates = [row for row in free if matches(request.want, row)]
            if len(candidates) < request.want.count:
                continue
            candidates.sort(key=lambda row: row.id in request.avoid)
            chosen = candidates[: request.want.count]
            taken = {row.id for row in chosen}
            free = [row for row in free if row.id not in taken]
            grants.append((request, chosen))
            if not free:
                break
        if not grants:
            return
        claimed = await self._store.write(
            _claim, [(r.job_id, [row.id for row in c]) for r, c in grants], lease_until
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
                await self.release(request.job_id, [d.id for d in devices])
            else:
                request.future.set_result(devices)


def _claim(
    conn: Connection, wanted: list[tuple[int, list[str]]], lease_until: datetime
) -> list[bool]:
    """Claim each job's devices all-or-nothing; returns which claims succeeded."""
    results = []
    for job_id, ids in wanted:
        results.append(device_store.claim_devices(conn, ids, job_id, lease_until))
    return results
