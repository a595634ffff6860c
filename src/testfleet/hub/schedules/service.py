"""Schedules at run time: a loop fires the due ones (each fire one job, whichever hub
gets there first); the API's checks and answers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from testfleet.hub.descriptors import check_descriptor, parse_body
from testfleet.hub.errors import ApiError
from testfleet.hub.schedules.timetable import Timetable, TimetableError
from testfleet.hub.signals import Signals
from testfleet.protocol.api import ErrorDetail
from testfleet.protocol.automation import ScheduleCreate, ScheduleInfo, ScheduleUpdate
from testfleet.protocol.wire import utcnow
from testfleet.store import schedules as schedule_store
from testfleet.store.db import Store
from testfleet.store.result_records import ScheduleRecord

_log = logging.getLogger(__name__)
POLL = 1.0
MISSED_GRACE = 60.0
"""A fire noticed later than this was missed (no hub ran): its schedule's policy decides."""


def timetable(cron: str, timezone: str) -> Timetable:
    """The timetable, or a 422 naming the field that is wrong."""
    try:
        return Timetable(cron, timezone)
    except TimetableError as error:
        raise ApiError(
            422,
            "invalid_schedule",
            f"/{error.field}: {error}",
            [ErrorDetail(location=f"/{error.field}", message=str(error))],
        ) from None


def _next_fire(schedule: ScheduleRecord, after: Any) -> Any:
    return Timetable(schedule.cron, schedule.timezone).next_after(after)


def schedule_info(record: ScheduleRecord) -> ScheduleInfo:
    """A schedule with its next five fires."""
    table = Timetable(record.cron, record.timezone)
    start = record.next_fire_at
    fires = [] if not record.enabled or start is None else [start, *table.upcoming(start, 4)]
    return ScheduleInfo(
        schedule_id=record.id,
        name=record.name,
        cron=record.cron,
        timezone=record.timezone,
        missed=record.missed,
        enabled=record.enabled,
        next_fires=fires,
        last_fire_at=record.last_fire_at,
        last_job_id=record.last_job_id,
        created_at=record.created_at,
        created_by=record.created_by,
        params=record.params,
        descriptor=record.descriptor,
    )


class Schedules:
    """Fires due schedules; checks and stores new ones."""

    def __init__(self, store: Store, signals: Signals) -> None:
        self._store = store
        self._signals = signals

    async def run(self) -> None:
        """Fire what is due every `POLL` seconds, until cancelled."""
        while True:
            try:
                await self.tick()
            except Exception:  # the store is away, say: the next pass tries again
                _log.exception("schedules: a pass failed; trying again")
            await asyncio.sleep(POLL)

    async def tick(self) -> list[schedule_store.Fire]:
        """Fire every due schedule once."""
        fires = await self._store.write(schedule_store.fire_due, utcnow(), MISSED_GRACE, _next_fire)
        for fire in fires:
            if fire.job_id is None:
                _log.warning(
                    "schedule %d: a fire missed while no hub ran, skipped", fire.schedule_id
                )
            else:
                _log.info("schedule %d started job %d", fire.schedule_id, fire.job_id)
        if any(fire.job_id is not None for fire in fires):
            self._signals.jobs_submitted.set()
        if fires:
            self._signals.lab_changed()
        return fires

    async def create(self, body: ScheduleCreate, requestor: str) -> ScheduleInfo:
        """Check and store a schedule; 409 if the name is taken."""
        table = timetable(body.cron, body.timezone)
        document = await _document(body.descriptor)
        descriptor = _checked(document, body.params)
        record = await self._store.write(
            schedule_store.create_schedule,
            name=body.name,
            cron=body.cron,
            timezone=body.timezone,
            descriptor=descriptor,
            params=dict(body.params),
            missed=body.missed,
            enabled=body.enabled,
            next_fire_at=table.next_after(utcnow()),
            created_at=utcnow(),
            created_by=requestor,
        )
        if record is None:
            raise ApiError(409, "schedule_exists", f"a schedule named {body.name!r} exists")
        self._signals.lab_changed()
        return schedule_info(record)

    async def update(self, schedule_id: int, body: ScheduleUpdate) -> ScheduleInfo:
        """Pause, resume or retime a schedule (its next fire is computed afresh)."""
        current = await self.get(schedule_id)
        values: dict[str, Any] = body.model_dump(exclude_none=True)
        table = timetable(
            values.get("cron", current.cron), values.get("timezone", current.timezone)
        )
        values["next_fire_at"] = table.next_after(utcnow())
        record = await self._store.write(schedule_store.update_schedule, schedule_id, **values)
        assert record is not None
        self._signals.lab_changed()
        return schedule_info(record)

    async def get(self, schedule_id: int) -> ScheduleRecord:
        """One schedule, or 404."""
        record = await self._store.read(schedule_store.get_schedule, schedule_id)
        if record is None:
            raise ApiError(404, "schedule_not_found", f"schedule {schedule_id} does not exist")
        return record

    async def run_now(self, schedule_id: int) -> int:
        """Start a schedule's job now, outside its timetable; returns the job's id."""
        record = await self.get(schedule_id)
        job_id = await self._store.write(schedule_store.run_now, record, utcnow())
        self._signals.jobs_submitted.set()
        self._signals.lab_changed()
        return job_id


_OWN = "schedule:"


async def _document(descriptor: dict[str, Any] | str) -> Any:
    """A descriptor given as text (YAML or JSON) decoded as POST /jobs decodes its body (in
    a worker thread); problems are 422 at /descriptor."""
    if not isinstance(descriptor, str):
        return descriptor
    kind = "application/json" if descriptor.lstrip().startswith("{") else "application/yaml"
    try:
        return await asyncio.to_thread(parse_body, descriptor.encode(), kind)
    except ApiError as error:
        detail = ErrorDetail(location="/descriptor", message=error.message)
        raise ApiError(
            422, "invalid_descriptor", f"/descriptor: {error.message}", [detail]
        ) from None


def _checked(descriptor: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The descriptor checked (and its params applied) as a job would be; 422 with locations
    under /descriptor otherwise."""
    try:
        checked = check_descriptor(descriptor, params, lambda name: f"{_OWN}/params/{name}")
    except ApiError as error:
        for detail in error.errors:
            if detail.location.startswith(_OWN):
                detail.location = detail.location.removeprefix(_OWN)
            elif detail.location.startswith("/"):
                detail.location = "/descriptor" + detail.location.rstrip("/")
        first = error.errors[0] if error.errors else None
        message = f"{first.location}: {first.message}" if first else error.message
        raise ApiError(error.status, error.code, message, error.errors) from None
    return checked.model_dump(mode="json")
