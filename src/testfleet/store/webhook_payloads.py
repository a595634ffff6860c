"""What a webhook delivery says about a stored event: the JSON body receivers get."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from testfleet.store.tables import agents, devices, jobs, test_cases

Delivered = tuple[int, str, dict[str, Any], list[str]]
"""(event id, webhook event, payload, the job's tags) for one stored event."""


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def payloads(conn: Connection, rows: Sequence[Any]) -> list[Delivered]:
    """The deliveries of stored events (job_finished, agent_lost, device_removed)."""
    found: list[Delivered] = []
    for row in rows:
        base = {"occurred_at": _time(row.at), "hub_event_id": row.id}
        if row.kind == "job_finished" and row.job_id is not None:
            job = _job(conn, row.job_id)
            if job is None:
                continue
            body = {**base, "job": job}
            counts = _case_counts(conn, row.job_id)
            if counts:
                body["test_cases"] = counts
            found.append((row.id, "job.finished", {"event": "job.finished", **body}, job["tags"]))
            if job["state"] == "failed":
                found.append((row.id, "job.failed", {"event": "job.failed", **body}, job["tags"]))
        elif row.kind == "agent_lost":
            data = row.data or {}
            name = str(data.get("agent", ""))
            agent = {"name": name, "reason": data.get("reason"), "tasks": data.get("tasks", [])}
            found.append(
                (row.id, "agent.lost", {"event": "agent.lost", **base, "agent": agent}, [])
            )
            names = _device_names(conn, name)
            if names:
                offline = {"agent": name, "devices": names, "reason": data.get("reason")}
                found.append(
                    (row.id, "device.offline", {"event": "device.offline", **base, **offline}, [])
                )
        elif row.kind == "device_removed":
            agent_name = _agent_name(conn, row.agent_id)
            offline = {
                "agent": agent_name,
                "devices": [str((row.data or {}).get("name", ""))],
                "reason": "removed by its agent",
            }
            found.append(
                (row.id, "device.offline", {"event": "device.offline", **base, **offline}, [])
            )
    return found


def _job(conn: Connection, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        return None
    return {
        "job_id": row.id,
        "name": row.name,
        "state": row.state,
        "requestor": row.requestor,
        "tags": list(row.tags),
        "created_at": _time(row.created_at),
        "started_at": _time(row.started_at),
        "ended_at": _time(row.ended_at),
        "error": row.error,
        "status_url": f"/api/v1/jobs/{row.id}",
    }


def _case_counts(conn: Connection, job_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(test_cases.c.outcome, func.count())
        .where(test_cases.c.job_id == job_id)
        .group_by(test_cases.c.outcome)
    ).all()
    counts = {str(outcome): int(count) for outcome, count in rows}
    if counts:
        counts["total"] = sum(counts.values())
    return counts


def _device_names(conn: Connection, agent_name: str) -> list[str]:
    query = (
        select(devices.c.name)
        .join(agents, agents.c.id == devices.c.agent_id)
        .where(agents.c.name == agent_name, devices.c.removed.is_(False))
        .order_by(devices.c.name)
    )
    return [str(name) for name in conn.execute(query).scalars()]


def _agent_name(conn: Connection, agent_id: int | None) -> str:
    if agent_id is None:
        return ""
    name = conn.execute(select(agents.c.name).where(agents.c.id == agent_id)).scalar()
    return str(name or "")
