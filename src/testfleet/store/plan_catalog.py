"""Plans, their source archives (stored once per content hash) and their builds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, union
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.store.plan_records import BuildRecord, PlanRecord
from testfleet.store.tables import plan_builds, plan_sources, plans


def _insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def put_source(conn: Connection, content_hash: str, data: bytes, now: datetime) -> None:
    """Keep an archive under its content hash (a second copy of the same content is a no-op)."""
    statement = _insert(conn, plan_sources).values(
        hash=content_hash, data=data, size=len(data), created_at=now
    )
    conn.execute(statement.on_conflict_do_nothing(index_elements=["hash"]))


def get_source(conn: Connection, content_hash: str) -> bytes | None:
    """The archive stored under `content_hash`."""
    return conn.execute(
        select(plan_sources.c.data).where(plan_sources.c.hash == content_hash)
    ).scalar_one_or_none()


def put_plan(
    conn: Connection,
    name: str,
    manifest: dict[str, Any],
    source_hash: str,
    requestor: str,
    now: datetime,
) -> None:
    """Record (or replace) the plan `name` with its manifest and current source."""
    statement = _insert(conn, plans).values(
        name=name,
        manifest=manifest,
        source_hash=source_hash,
        imported_at=now,
        requestor=requestor,
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "manifest": statement.excluded.manifest,
                "source_hash": statement.excluded.source_hash,
                "imported_at": statement.excluded.imported_at,
                "requestor": statement.excluded.requestor,
            },
        )
    )


def _plans_query() -> Any:
    return select(
        plans.c.name,
        plans.c.manifest,
        plans.c.source_hash,
        plans.c.imported_at,
        plans.c.requestor,
        plan_sources.c.size,
    ).join(plan_sources, plan_sources.c.hash == plans.c.source_hash)


def get_plan(conn: Connection, name: str) -> PlanRecord | None:
    """The plan called `name`."""
    row = conn.execute(_plans_query().where(plans.c.name == name)).first()
    return PlanRecord.from_row(row) if row is not None else None


def list_plans(conn: Connection) -> list[PlanRecord]:
    """Every plan, by name."""
    return [PlanRecord.from_row(r) for r in conn.execute(_plans_query().order_by(plans.c.name))]


def put_build(
    conn: Connection,
    *,
    artifact: str,
    plan: str,
    builder: str,
    source_hash: str,
    sdk_hash: str | None,
    build_config: dict[str, Any],
    now: datetime,
) -> None:
    """Record a build under its artifact key (built before: a no-op)."""
    statement = _insert(conn, plan_builds).values(
        artifact=artifact,
        plan=plan,
        builder=builder,
        source_hash=source_hash,
        sdk_hash=sdk_hash,
        build_config=build_config,
        created_at=now,
    )
    conn.execute(statement.on_conflict_do_nothing(index_elements=["artifact"]))


def get_build(conn: Connection, artifact: str) -> BuildRecord | None:
    """The build with this artifact key."""
    row = conn.execute(select(plan_builds).where(plan_builds.c.artifact == artifact)).first()
    return BuildRecord.from_row(row) if row is not None else None


def unreferenced_sources(conn: Connection) -> list[str]:
    """Archives that no plan, build or task refers to any more."""
    used = union(
        select(plans.c.source_hash),
        select(plan_builds.c.source_hash),
        select(plan_builds.c.sdk_hash).where(plan_builds.c.sdk_hash.is_not(None)),
    )
    rows = conn.execute(select(plan_sources.c.hash).where(plan_sources.c.hash.not_in(used)))
    return [row.hash for row in rows]


def delete_sources(conn: Connection, hashes: list[str]) -> int:
    """Drop stored archives; returns how many went."""
    if not hashes:
        return 0
    return conn.execute(delete(plan_sources).where(plan_sources.c.hash.in_(hashes))).rowcount
