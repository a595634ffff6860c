"""Schedules and their fires: each due fire starts exactly one job, in the same transaction
that moves the schedule to its next fire (a locked row: `SKIP LOCKED` on PostgreSQL), so
several hubs never start one fire twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from testfleet.store.events import add_events, event_row
from testfleet.store.job_ops import submit_job
from testfleet.store.result_records import ScheduleRecord
from testfleet.store.tables import schedules

NextFire = Callable[[ScheduleRecord, datetime], datetime]
"""The schedule's first fire after a moment."""


def create_schedule(conn: Connection, /, **values: Any) -> ScheduleRecord | None:
    """Add a schedule; None if the name is taken."""
    taken = conn.execute(select(schedules.c.id).where(schedules.c.name == values["name"])).first()
    if taken is not None:
        return None
    row = conn.execute(insert(schedules).values(**values).returning(*schedules.c)).one()
    return ScheduleRecord.from_row(row)


def list_schedules(conn: Connection) -> list[ScheduleRecord]:
    """Every schedule, by name."""
    rows = conn.execute(select(schedules).order_by(schedules.c.name))
    return [ScheduleRecord.from_row(row) for row in rows]


def get_schedule(conn: Connection, schedule_id: int) -> ScheduleRecord | None:
    """One schedule."""
    row = conn.execute(select(schedules).where(schedules.c.id == schedule_id)).first()
    return ScheduleRecord.from_row(row) if row is not None else None


def update_schedule(conn: Connection, /, schedule_id: int, **values: Any) -> ScheduleRecord | None:
    """Change a schedule; None if there is none."""
    if values:
        conn.execute(update(schedules).where(schedules.c.id == schedule_id).values(**values))
    return get_schedule(conn, schedule_id)


def delete_schedule(conn: Connection, schedule_id: int) -> bool:
    """Remove a schedule (its jobs stay); False if there was none."""
    return bool(conn.execute(delete(schedules).where(schedules.c.id == schedule_id)).rowcount)


def start_scheduled_job(
    conn: Connection, schedule: ScheduleRecord, now: datetime, scheduled_for: datetime | None
) -> int:
    """Start a schedule's descriptor as a job now; returns its id."""
    descriptor = schedule.descriptor
    job_id = submit_job(
        conn,
        name=str(descriptor["name"]),
        descriptor=descriptor,
        tags=list(descriptor.get("tags", [])),
        runs=int(descriptor.get("runs", 1)),
        requestor=f"schedule:{schedule.name}",
        now=now,
    )
    data = {
        "schedule_id": schedule.id,
        "schedule": schedule.name,
        "scheduled_for": scheduled_for.isoformat() if scheduled_for else None,
    }
    add_events(conn, [event_row("job_scheduled", now, job_id=job_id, data=data)])
    return job_id


def run_now(conn: Connection, schedule: ScheduleRecord, now: datetime) -> int:
    """Start a schedule's job outside its timetable; it becomes the schedule's last job (its
    last fire and next fire stay as they are)."""
    job_id = start_scheduled_job(conn, schedule, now, None)
    conn.execute(update(schedules).where(schedules.c.id == schedule.id).values(last_job_id=job_id))
    return job_id


@dataclass(frozen=True)
class Fire:
    """What a due schedule did: started a job, or skipped a fire missed while no hub ran."""

    schedule_id: int
    job_id: int | None
    missed: bool


def fire_due(
    conn: Connection, now: datetime, grace: float, next_fire: NextFire, limit: int = 50
) -> list[Fire]:
    """Fire every enabled schedule that is due: a job each (a fire later than `grace` seconds
    was missed: its `missed` policy says whether it still runs, once), then its next fire."""
    due = (
        select(schedules)
        .where(schedules.c.enabled.is_(True), schedules.c.next_fire_at <= now)
        .order_by(schedules.c.next_fire_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    fires: list[Fire] = []
    for row in conn.execute(due).all():
        schedule = ScheduleRecord.from_row(row)
        assert schedule.next_fire_at is not None
        missed = now - schedule.next_fire_at > timedelta(seconds=grace)
        values: dict[str, Any] = {"next_fire_at": next_fire(schedule, now)}
        job_id = None
        if not missed or schedule.missed == "once":
            job_id = start_scheduled_job(conn, schedule, now, schedule.next_fire_at)
            values |= {"last_fire_at": now, "last_job_id": job_id}
        moved = conn.execute(
            update(schedules)
            .where(schedules.c.id == schedule.id, schedules.c.next_fire_at == schedule.next_fire_at)
            .values(**values)
        )
        assert moved.rowcount == 1  # the row is locked (PostgreSQL) or the only writer's
        fires.append(Fire(schedule.id, job_id, missed))
    return fires
