"""Every forwarded command recorded (name, status, duration) and the sessions' idle deadlines
moved, written in batches: one transaction per flush, not one per command."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from testfleet.store import driver_sessions as session_store
from testfleet.store.db import Store

_log = logging.getLogger(__name__)
FLUSH_EVERY = 0.5
MAX_BUFFERED = 200_000
"""Commands kept while the store is away; past that the oldest are dropped (and counted)."""

_ID = re.compile(r"/(element|shadow|frame|window)/[^/]+")


@lru_cache(maxsize=4096)
def command_name(method: str, rest: str) -> str:
    """`POST /element/3f2a.../click` -> `POST /element/{id}/click`: the command, not its data."""
    path = _ID.sub(r"/\1/{id}", rest) or "/"
    return f"{method} {path}"[:300]


def error_code(head: bytes) -> str | None:
    """The W3C error named in the head of an error answer, if it can be read."""
    try:
        value = json.loads(head).get("value")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    error = value.get("error") if isinstance(value, dict) else None
    return str(error)[:100] if error else None


@dataclass
class _Touched:
    last_at: float
    """Seconds since the epoch (a datetime is made only when written)."""
    count: int
    idle_timeout: int


Command = tuple[int, float, str, str, int, str | None, float]
"""session row, when (seconds since the epoch), method, command, status, W3C error, ms."""


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class CommandLog:
    """Buffers this hub's forwarded commands; `run()` writes them every `FLUSH_EVERY` s."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._commands: list[Command] = []
        self._touched: dict[int, _Touched] = {}
        self._in_flight: dict[int, tuple[int, int]] = {}
        """Sessions with commands under way: row -> (how many, idle timeout)."""
        self.dropped = 0

    def began(self, row_id: int, idle_timeout: int) -> None:
        """A command of the session is under way: it is not idle until the command ends."""
        count, _ = self._in_flight.get(row_id, (0, idle_timeout))
        self._in_flight[row_id] = (count + 1, idle_timeout)

    def ended(self, row_id: int) -> None:
        """The command that `began` has ended (recorded or not)."""
        count, timeout = self._in_flight.pop(row_id, (1, 0))
        if count > 1:
            self._in_flight[row_id] = (count - 1, timeout)

    def record(
        self,
        row_id: int,
        idle_timeout: int,
        at: float,
        method: str,
        command: str,
        status: int,
        error: str | None,
        duration_ms: float,
    ) -> None:
        """Note one command that began at `at` (time.time()); cheap: no I/O."""
        self._commands.append((row_id, at, method, command, status, error, duration_ms))
        self.touch(row_id, idle_timeout, count=1)
        if len(self._commands) > MAX_BUFFERED:
            excess = len(self._commands) - MAX_BUFFERED
            del self._commands[:excess]
            self.dropped += excess

    def touch(self, row_id: int, idle_timeout: int, count: int = 0) -> None:
        """The session is in use now (its idle deadline moves)."""
        touched = self._touched.get(row_id)
        if touched is None:
            self._touched[row_id] = _Touched(time.time(), count, idle_timeout)
        else:
            touched.last_at = time.time()
            touched.count += count

    async def flush(self) -> None:
        """Write what is buffered (kept for the next flush if the store fails)."""
        for row_id, (_, timeout) in self._in_flight.items():
            self.touch(row_id, timeout)
        if not self._commands and not self._touched:
            return
        commands, self._commands = self._commands, []
        touched, self._touched = self._touched, {}
        activity = [
            session_store.Activity(row_id, _when(t.last_at), t.count, t.idle_timeout)
            for row_id, t in touched.items()
        ]
        rows = [
            {
                "session_id": row_id,
                "at": _when(at),
                "method": method,
                "command": command,
                "status": status,
                "error": error,
                "duration_ms": round(duration_ms, 3),
            }
            for row_id, at, method, command, status, error, duration_ms in commands
        ]
        try:
            await self._store.write(session_store.record_activity, activity, rows)
        except Exception:
            _log.exception("cannot store %d session command(s); keeping them", len(commands))
            self._commands[:0] = commands
            for row_id, t in touched.items():
                self._touched.setdefault(row_id, t)
            raise

    async def flush_now(self) -> None:
        """Flush before answering a reader (the timeline is then up to date); a failure is
        logged, the commands stay buffered."""
        try:
            await self.flush()
        except Exception:
            _log.warning("session commands could not be stored yet")

    async def run(self) -> None:
        """Flush every `FLUSH_EVERY` seconds until cancelled (then once more)."""
        try:
            while True:
                await asyncio.sleep(FLUSH_EVERY)
                try:
                    await self.flush()
                except Exception:
                    await asyncio.sleep(FLUSH_EVERY)
        finally:
            try:
                await asyncio.shield(self.flush())
            except Exception:
                _log.warning("session commands not stored at shutdown")
