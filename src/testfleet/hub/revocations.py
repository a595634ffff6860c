"""Revoked tokens end the connections made with them (agent sockets, followed event streams)
within a second, whichever hub (or the `testfleet token revoke` command) revoked them."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from testfleet.store.db import Store
from testfleet.store.tokens import revoked_among

_log = logging.getLogger(__name__)
POLL = 0.5
"""Seconds between looks at the store for tokens revoked elsewhere."""


class Revocations:
    """The tokens of open connections, watched for revocation."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._events: dict[int, asyncio.Event] = {}
        self._watchers: Counter[int] = Counter()
        self._never = asyncio.Event()
        """What the connections made without a token watch: never set."""

    @contextmanager
    def watch(self, token_id: int | None) -> Iterator[asyncio.Event]:
        """An event set once `token_id` is revoked, for as long as the block runs (a token
        of None, when auth is off, is never revoked)."""
        if token_id is None:
            yield self._never
            return
        event = self._events.setdefault(token_id, asyncio.Event())
        self._watchers[token_id] += 1
        try:
            yield event
        finally:
            self._watchers[token_id] -= 1
            if self._watchers[token_id] <= 0:
                del self._watchers[token_id]
                self._events.pop(token_id, None)

    def revoked(self, token_id: int) -> None:
        """This hub revoked a token: end its connections now."""
        event = self._events.get(token_id)
        if event is not None:
            event.set()

    async def run(self) -> None:
        """Look for tokens revoked elsewhere, until cancelled."""
        while True:
            await asyncio.sleep(POLL)
            watched = [t for t, event in self._events.items() if not event.is_set()]
            if not watched:
                continue
            try:
                for token_id in await self._store.read(revoked_among, watched):
                    self.revoked(token_id)
            except Exception:  # the store is away: the next look tries again
                _log.warning("cannot look for revoked tokens; trying again", exc_info=True)
