"""The probe inside the application: measures with coverage.py, keeps the sessions the hub
starts, and sends their coverage every flush interval. Its connection runs on an event loop
in a thread of its own (started before measuring, so the probe never measures itself)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import threading
from pathlib import Path

import testfleet
from testfleet.probe.build import Build, scan
from testfleet.probe.config import ProbeConfig
from testfleet.probe.link import Link
from testfleet.probe.meter import Executed, Hits, Meter
from testfleet.probe.outbox import ProbeOutbox
from testfleet.probe.sessions import Session, Sessions, now_ms
from testfleet.protocol.coverage import (
    AddAgentSessionData,
    AgentAction,
    CancelAgentSession,
    CancelAllAgentSessions,
    SessionCancelled,
    SessionChanged,
    SessionFinished,
    SessionsCancelled,
    SessionsFinished,
    SessionStarted,
    StartAgentSession,
    StopAgentSession,
    StopAllAgentSessions,
)

_log = logging.getLogger("testfleet.probe")
PACKAGE_DIR = Path(testfleet.__file__).resolve().parent
EXIT_FLUSH = 5.0
FIRST_CONNECT_WAIT = 3.0
"""At exit, how long a process that never reached the hub waits for it."""


class Probe:
    """One application process's probe. `start()` begins measuring and connecting."""

    def __init__(self, config: ProbeConfig) -> None:
        self.config = config
        omit = [PACKAGE_DIR]
        self.meter = Meter(config.roots, omit, branch=config.branch)
        self.build: Build = scan(
            config.roots, config.base, self.meter.cov, omit=omit, with_source=config.send_source
        )
        self.sessions = Sessions(self.build)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="testfleet-probe", daemon=True)
        self.outbox: ProbeOutbox
        self.link: Link
        self._started = threading.Event()
        self._closed = False
        self._ready_ticks = 0
        self._early: Hits | None = {}
        """What ran before the first connection (and shortly after): the sessions open on
        the hub when the probe connects (an application-wide session a new process joins)
        count it too, as it ran while they were open."""

    # ---- the application's side (any thread) --------------------------------------------

    def start(self) -> Probe:
        """Connect (in the background) and start measuring."""
        self._thread.start()
        self._started.wait(10)
        self.meter.start()
        atexit.register(self.close)
        return self

    def set_test(self, name: str) -> str:
        """Name the test that runs from now on ("" for none); returns the previous name."""
        return self.meter.switch_context(name)

    def wait_ready(self, timeout: float) -> bool:
        """Block until the hub has accepted the probe (or `timeout` seconds); False if it
        did not, or refused it."""
        if not self._thread.is_alive():
            return False
        future = asyncio.run_coroutine_threadsafe(self._ready(timeout), self._loop)
        try:
            return future.result(timeout + 1)
        except TimeoutError:
            return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Send what the sessions collected now and wait until the hub has acknowledged
        everything sent; False if that did not happen within `timeout` seconds."""
        if not self._thread.is_alive():
            return False
        future = asyncio.run_coroutine_threadsafe(self._flush_now(timeout), self._loop)
        try:
            return future.result(timeout + 1)
        except TimeoutError:
            return False

    def close(self, timeout: float = EXIT_FLUSH) -> None:
        """Send what the active sessions collected, give the hub `timeout` seconds to take
        it, then stop measuring and disconnect. Sessions stay open on the hub."""
        if self._closed or not self._thread.is_alive():
            self.meter.stop()
            return
        self._closed = True
        future = asyncio.run_coroutine_threadsafe(self._drain(timeout), self._loop)
        with contextlib.suppress(Exception):
            future.result(timeout + 2)
        self.meter.stop()
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.link.stop)
        self._thread.join(3)

    # ---- the probe's loop ----------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.outbox = ProbeOutbox()
        self.link = Link(
            self.config, self.build, self.outbox, self._handle, lambda: list(self.sessions.active)
        )
        self._started.set()
        flusher = self._loop.create_task(self._flush_forever())
        try:
            self._loop.run_until_complete(self.link.run())
        finally:
            flusher.cancel()
            with contextlib.suppress(BaseException):
                self._loop.run_until_complete(flusher)
            self._loop.close()

    async def _ready(self, within: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.link.ready.wait()
        return self.link.ready.is_set()

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.link.flush_interval)
            try:
                self._collect()
                if self.link.ready.is_set():
                    self._send_changes()
                    self._ready_ticks += 1
                    if self._ready_ticks >= 2:
                        self._early = None  # the sessions open at connect have started
            except Exception:  # measurement must never take the application down
                _log.exception("testfleet probe: collecting coverage failed")

    async def _flush_now(self, within: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.link.ready.wait()
                self._collect()
                self._send_changes()
                await self.outbox.emptied.wait()
                return True
        return False

    async def _drain(self, within: float) -> None:
        if not self.link.ready.is_set() and self.link.refused is None and self._early:
            # A short-lived process: the sessions it joins on connecting come before READY.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(within, FIRST_CONNECT_WAIT)):
                    await self.link.ready.wait()
        self._collect()
        self._send_changes()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.outbox.emptied.wait()

    def _collect(self) -> None:
        hits = self.meter.collect()
        if self._early is not None:
            for filename, contexts in hits.items():
                kept = self._early.setdefault(filename, {})
                for context, ran in contexts.items():
                    kept.setdefault(context, Executed()).update(ran)
        self.sessions.add(hits)

    def _send_changes(self) -> None:
        for session in list(self.sessions.active.values()):
            self._send_parts(session)
            if session.payload.isRealtime and session.probe_count != session.reported_count:
                session.reported_count = session.probe_count
                self.outbox.add(
                    SessionChanged(
                        sessionId=session.payload.sessionId, probeCount=session.probe_count
                    )
                )

    def _send_parts(self, session: Session) -> None:
        for part in self.sessions.parts(session):
            self.outbox.add(part)

    def _handle(self, action: AgentAction) -> None:
        """A Drill4J agent action from the hub (on the probe's loop)."""
        self._collect()  # what ran so far belongs to the sessions active so far
        match action:
            case StartAgentSession(payload=payload):
                session = self.sessions.start(payload)
                if self._early is not None:
                    self.sessions.add(self._early, only=session)
                self.outbox.add(
                    SessionStarted(
                        sessionId=payload.sessionId,
                        testType=payload.testType,
                        isRealtime=payload.isRealtime,
                        ts=now_ms(),
                    )
                )
                _log.info("testfleet probe: session %s started", session.payload.sessionId)
            case StopAgentSession(payload=payload):
                self._finish(payload.sessionId)
                self.outbox.add(SessionFinished(sessionId=payload.sessionId, ts=now_ms()))
            case StopAllAgentSessions():
                ids = list(self.sessions.active)
                for session_id in ids:
                    self._finish(session_id)
                self.outbox.add(SessionsFinished(ids=ids, ts=now_ms()))
            case CancelAgentSession(payload=payload):
                self.sessions.end(payload.sessionId)
                self.outbox.discard_session(payload.sessionId)
                self.outbox.add(SessionCancelled(sessionId=payload.sessionId, ts=now_ms()))
            case CancelAllAgentSessions():
                ids = list(self.sessions.active)
                for session_id in ids:
                    self.sessions.end(session_id)
                    self.outbox.discard_session(session_id)
                self.outbox.add(SessionsCancelled(ids=ids, ts=now_ms()))
            case AddAgentSessionData(payload=payload):
                self._session_data(payload.data)

    def _finish(self, session_id: str) -> None:
        session = self.sessions.active.get(session_id)
        if session is not None:
            self._send_parts(session)
            self.sessions.end(session_id)

    def _session_data(self, data: str) -> None:
        try:
            decoded = json.loads(data)
        except json.JSONDecodeError:
            _log.warning("testfleet probe: ADD_SESSION_DATA is not JSON; ignored")
            return
        if isinstance(decoded, dict) and isinstance(decoded.get("testName"), str):
            self.set_test(decoded["testName"])
