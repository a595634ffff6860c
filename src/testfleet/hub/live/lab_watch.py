""" "The lab changed": one watcher per hub reads what changed and tells every subscriber.

The store is read once per change for all open pages together (never once per page), at
most every `min_gap` seconds, and only while someone watches. Changes made on this hub wake
the watcher at once; changes made on other hubs sharing the store are seen by a poll every
`poll` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, ScalarSelect, Table, func, select

from testfleet.hub.signals import Signals
from testfleet.store.db import Store
from testfleet.store.driver_sessions import LIVE_STATES
from testfleet.store.tables import (
    agents,
    coverage_builds,
    coverage_parts,
    coverage_probes,
    coverage_sessions,
    devices,
    driver_sessions,
    events,
    plan_tasks,
    schedules,
    session_commands,
    webhook_attempts,
    webhook_deliveries,
    webhooks,
)

_log = logging.getLogger(__name__)
Topic = Literal["jobs", "inventory", "schedules", "webhooks", "sessions", "plans", "coverage"]
ALL_TOPICS: tuple[Topic, ...] = (
    "coverage",
    "inventory",
    "jobs",
    "plans",
    "schedules",
    "sessions",
    "webhooks",
)

JOB_KINDS = frozenset(
    {
        "job_queued",
        "job_started",
        "job_stop_requested",
        "job_retried",
        "job_finished",
        "jobs_deleted",
    }
)
"""Events after which a list of jobs or their counts may read differently."""
INVENTORY_KINDS = frozenset(
    {
        "device_added",
        "device_removed",
        "agent_lost",
        "devices_acquired",
        "test_finished",  # its devices are given back
        "job_finished",  # and any it still held
    }
)
"""Events after which agents or devices (or their claims) may read differently."""


@dataclass(frozen=True)
class LabPrint:
    """What the watcher compares: the newest event, the inventory's shape, and the schedules'
    and webhooks' (their counts and newest rows)."""

    newest_event: int
    agents: tuple[tuple[str, int, str], ...]
    devices: tuple[tuple[str, int], ...]
    schedules: tuple[object, ...] = ()
    webhooks: tuple[object, ...] = ()
    sessions: tuple[object, ...] = ()
    plans: tuple[object, ...] = ()
    coverage: tuple[object, ...] = ()


def _scalar(
    column: ColumnElement[Any], table: Table, *where: ColumnElement[bool]
) -> ScalarSelect[Any]:
    return select(column).select_from(table).where(*where).scalar_subquery()


SCHEDULE_PRINT = (
    _scalar(func.count(), schedules),
    _scalar(func.max(schedules.c.id), schedules),
    _scalar(func.count(), schedules, schedules.c.enabled.is_(True)),
    _scalar(func.min(schedules.c.next_fire_at), schedules),
    _scalar(func.max(schedules.c.next_fire_at), schedules),
    _scalar(func.max(schedules.c.last_fire_at), schedules),
    _scalar(func.max(schedules.c.last_job_id), schedules),
)
"""Schedules added, removed, paused or resumed, retimed, fired: small table, cheap counts."""
WEBHOOK_PRINT = (
    _scalar(func.count(), webhooks),
    _scalar(func.max(webhooks.c.id), webhooks),
    _scalar(func.count(), webhooks, webhooks.c.active.is_(True)),
    _scalar(func.max(webhook_deliveries.c.id), webhook_deliveries),
    _scalar(func.max(webhook_attempts.c.id), webhook_attempts),
)
"""Webhooks added, removed, paused; a delivery queued; an attempt made (primary keys)."""
_LIVE_SESSION = driver_sessions.c.state.in_(LIVE_STATES)
SESSION_PRINT = (
    _scalar(func.max(driver_sessions.c.id), driver_sessions),
    _scalar(func.count(), driver_sessions, _LIVE_SESSION),
    _scalar(func.count(), driver_sessions, _LIVE_SESSION, driver_sessions.c.started_at.is_(None)),
    _scalar(func.max(session_commands.c.id), session_commands),
)
"""Gateway sessions requested, started, ended; a command recorded (the state's index and
primary keys only)."""
_UNFINISHED_TASK = plan_tasks.c.state.in_(("scheduled", "processing"))
PLAN_PRINT = (
    _scalar(func.max(plan_tasks.c.created_at), plan_tasks),
    _scalar(func.count(), plan_tasks, _UNFINISHED_TASK),
    _scalar(func.count(), plan_tasks, plan_tasks.c.state == "processing"),
)
"""Plan tasks created, started, finished (by the state's index). A run's instances are not in
it: a run's page reads them again while the run is unfinished."""
COVERAGE_PRINT = (
    _scalar(func.max(coverage_builds.c.id), coverage_builds),
    _scalar(func.count(), coverage_probes),
    _scalar(func.max(coverage_probes.c.connected_at), coverage_probes),
    _scalar(func.count(), coverage_sessions),
    _scalar(func.count(), coverage_sessions, coverage_sessions.c.state == "active"),
    _scalar(func.max(coverage_parts.c.id), coverage_parts),
)
"""A build announced, probes connected or gone; coverage sessions started, finished or
cancelled; a coverage part taken in."""
_PARTS = {
    "schedules": SCHEDULE_PRINT,
    "webhooks": WEBHOOK_PRINT,
    "sessions": SESSION_PRINT,
    "plans": PLAN_PRINT,
    "coverage": COVERAGE_PRINT,
}


def read_print(conn: Connection) -> LabPrint:
    """The lab's fingerprint: four aggregate queries (the last one a row of scalar ones)."""
    newest = conn.execute(select(func.max(events.c.id))).scalar() or 0
    agent_rows = conn.execute(
        select(agents.c.state, func.count(), func.max(agents.c.connected_at)).group_by(
            agents.c.state
        )
    )
    device_rows = conn.execute(
        select(devices.c.state, func.count())
        .where(devices.c.removed.is_(False))
        .group_by(devices.c.state)
    )
    row = tuple(conn.execute(select(*(c for part in _PARTS.values() for c in part))).one())
    parts: dict[str, tuple[object, ...]] = {}
    start = 0
    for name, columns in _PARTS.items():
        parts[name] = row[start : start + len(columns)]
        start += len(columns)
    return LabPrint(
        newest_event=int(newest),
        agents=tuple(sorted((str(s), int(n), str(t)) for s, n, t in agent_rows)),
        devices=tuple(sorted((str(s), int(n)) for s, n in device_rows)),
        schedules=parts["schedules"],
        webhooks=parts["webhooks"],
        sessions=parts["sessions"],
        plans=parts["plans"],
        coverage=parts["coverage"],
    )


def kinds_between(conn: Connection, after: int, upto: int) -> set[str]:
    """The kinds of the events with ids in (after, upto], logs left out."""
    query = (
        select(events.c.kind)
        .where(events.c.id > after, events.c.id <= upto, events.c.kind != "log")
        .distinct()
    )
    return {str(kind) for kind in conn.execute(query).scalars()}


def _read(conn: Connection, before: LabPrint | None) -> tuple[LabPrint, list[Topic]]:
    now = read_print(conn)
    if before is None:
        return now, list(ALL_TOPICS)
    topics: list[Topic] = []
    kinds = (
        kinds_between(conn, before.newest_event, now.newest_event)
        if now.newest_event > before.newest_event
        else set()
    )
    if kinds & JOB_KINDS:
        topics.append("jobs")
    if kinds & INVENTORY_KINDS or (now.agents, now.devices) != (before.agents, before.devices):
        topics.append("inventory")
    if now.schedules != before.schedules:
        topics.append("schedules")
    if now.webhooks != before.webhooks:
        topics.append("webhooks")
    if now.sessions != before.sessions:
        topics.append("sessions")
    if now.plans != before.plans:
        topics.append("plans")
    if now.coverage != before.coverage:
        topics.append("coverage")
    return now, topics


class LabSubscription:
    """One watcher's pending topics; changes that come faster than it reads are merged."""

    def __init__(self) -> None:
        self._topics: set[Topic] = set()
        self._ready = asyncio.Event()

    def add(self, topics: list[Topic]) -> None:
        """Record changed topics."""
        self._topics.update(topics)
        self._ready.set()

    async def next(self) -> list[Topic]:
        """The topics changed since the last call (waits for at least one)."""
        await self._ready.wait()
        self._ready.clear()
        topics, self._topics = sorted(self._topics), set()
        return topics


class LabWatch:
    """Tells subscribers when jobs, the inventory, schedules, webhooks, gateway sessions, plan
    tasks or coverage sessions change."""

    def __init__(
        self, store: Store, signals: Signals, *, poll: float = 2.0, min_gap: float = 0.2
    ) -> None:
        self._store = store
        self._signals = signals
        self._poll = poll
        self._min_gap = min_gap
        self._subscribers: set[LabSubscription] = set()
        self._print: LabPrint | None = None

    def subscribe(self) -> LabSubscription:
        """A new subscription (its first notice names every topic)."""
        subscription = LabSubscription()
        self._subscribers.add(subscription)
        self._signals.lab_changed()
        return subscription

    def unsubscribe(self, subscription: LabSubscription) -> None:
        """Stop telling `subscription`."""
        self._subscribers.discard(subscription)

    async def run(self) -> None:
        """Read and tell, until cancelled."""
        known: set[LabSubscription] = set()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._signals.lab.wait()
            self._signals.lab.clear()
            if not self._subscribers:
                self._print = None
                continue
            joined = self._subscribers - known
            known = set(self._subscribers)
            try:
                self._print, topics = await self._store.read(_read, self._print)
            except Exception:  # the store is away: try again at the next poll
                _log.warning("the lab watch cannot read the store", exc_info=True)
                continue
            for subscription in self._subscribers:
                told = list(ALL_TOPICS) if subscription in joined else topics
                if told:
                    subscription.add(told)
            await asyncio.sleep(self._min_gap)
