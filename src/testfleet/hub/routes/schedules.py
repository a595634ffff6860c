"""Schedules: descriptors started on a cron timetable, with their next fire times."""

from __future__ import annotations

from fastapi import APIRouter, Response

from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import HubDep, Operator, Reader, RowId
from testfleet.hub.schedules.service import schedule_info
from testfleet.protocol.automation import (
    ScheduleCreate,
    ScheduleInfo,
    ScheduleList,
    ScheduleRun,
    ScheduleUpdate,
)
from testfleet.store import schedules as schedule_store

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])


@router.post("", status_code=201, response_model=ScheduleInfo, summary="Add a schedule")
async def create(body: ScheduleCreate, hub: HubDep, who: Operator) -> ScheduleInfo:
    return await hub.schedules.create(body, who.name)


@router.get("", response_model=ScheduleList, summary="Every schedule with its next fire times")
async def list_all(hub: HubDep, _: Reader) -> ScheduleList:
    records = await hub.store.read(schedule_store.list_schedules)
    return ScheduleList(server_id=hub.server_id, schedules=[schedule_info(r) for r in records])


@router.get("/{schedule_id}", response_model=ScheduleInfo, summary="One schedule")
async def get(schedule_id: RowId, hub: HubDep, _: Reader) -> ScheduleInfo:
    return schedule_info(await hub.schedules.get(schedule_id))


@router.patch("/{schedule_id}", response_model=ScheduleInfo, summary="Pause, resume or retime")
async def patch(schedule_id: RowId, body: ScheduleUpdate, hub: HubDep, _: Operator) -> ScheduleInfo:
    return await hub.schedules.update(schedule_id, body)


@router.delete("/{schedule_id}", status_code=204, summary="Remove a schedule (its jobs stay)")
async def delete(schedule_id: RowId, hub: HubDep, _: Operator) -> Response:
    if not await hub.store.write(schedule_store.delete_schedule, schedule_id):
        raise ApiError(404, "schedule_not_found", f"schedule {schedule_id} does not exist")
    hub.signals.lab_changed()
    return Response(status_code=204)


@router.post(
    "/{schedule_id}/run",
    status_code=201,
    response_model=ScheduleRun,
    summary="Start the schedule's job now, outside its timetable",
)
async def run_now(schedule_id: RowId, hub: HubDep, _: Operator) -> ScheduleRun:
    job_id = await hub.schedules.run_now(schedule_id)
    return ScheduleRun(schedule_id=schedule_id, job_id=job_id)
