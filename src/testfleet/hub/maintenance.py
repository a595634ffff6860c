"""Housekeeping in the background: deleted jobs removed (files first, then rows, a batch per
transaction so the store never stalls), the retention policy applied, and uploads abandoned
by dead agents cleaned up."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from testfleet.hub.artifacts.storage import ArtifactStorage
from testfleet.hub.config import HubConfig
from testfleet.protocol.wire import utcnow
from testfleet.store import artifacts as artifact_store
from testfleet.store import deletions
from testfleet.store.db import Store

_log = logging.getLogger(__name__)
POLL = 2.0
RETENTION_EVERY = 60.0
STALE_EVERY = 600.0
STALE_UPLOAD = timedelta(days=1)
CLAIM_LEASE = 300.0


class Maintenance:
    """Removes deleted and expired jobs with their files; drops abandoned uploads."""

    def __init__(self, config: HubConfig, store: Store, storage: ArtifactStorage) -> None:
        self._config = config
        self._server_id = config.effective_server_id
        self._store = store
        self._storage = storage
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled."""
        loop = asyncio.get_running_loop()
        retention_at = stale_at = loop.time()
        while True:
            try:
                if loop.time() >= retention_at:
                    retention_at = loop.time() + RETENTION_EVERY
                    await self.apply_retention()
                if loop.time() >= stale_at:
                    stale_at = loop.time() + STALE_EVERY
                    await self.drop_stale_uploads()
                await self.remove_deleted()
            except Exception:  # the store is away, say: the next pass tries again
                _log.exception("maintenance: a pass failed; trying again")
            self.wake.clear()
            try:
                async with asyncio.timeout(POLL):
                    await self.wake.wait()
            except TimeoutError:
                pass

    async def apply_retention(self) -> int:
        """Queue the jobs past their retention for removal; returns how many."""
        config = self._config
        if config.retain_days is None and not config.retain_tags:
            return 0
        expired = await self._store.write(
            deletions.queue_expired, utcnow(), config.retain_days, dict(config.retain_tags)
        )
        if expired:
            _log.info("retention: %d job(s) expired", len(expired))
        return len(expired)

    async def remove_deleted(self) -> int:
        """Remove every job queued for deletion that no other hub is removing."""
        removed = 0
        while True:
            now = utcnow()
            claimed = await self._store.write(
                deletions.claim_deletions,
                self._server_id,
                now,
                now + timedelta(seconds=CLAIM_LEASE),
            )
            if not claimed:
                return removed
            for job_id in claimed:
                await self._storage.delete_job(job_id)
                # A batch per transaction: other writes get in between.
                done = False
                while not done:
                    done = await self._store.write(deletions.delete_some, job_id)
                removed += 1

    async def drop_stale_uploads(self) -> int:
        """Forget uploads started a day ago and never finished (their agent died)."""
        stale = await self._store.read(artifact_store.stale_uploads, utcnow() - STALE_UPLOAD)
        for artifact in stale:
            await self._storage.discard(artifact.key)
        await self._store.write(artifact_store.drop_artifacts, [a.id for a in stale])
        return len(stale)
