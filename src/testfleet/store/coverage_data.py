"""Coverage data: a session's parts as they arrive, its per-(class, test) masks once it has
finished, and a build's classes and functions read page by page. Nothing here loads a
session or a build whole: callers fold pages into compact bit masks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from testfleet.store.coverage_codec import Entry, decode_part, mask_bytes, mask_of
from testfleet.store.coverage_records import ClassRecord, FunctionRecord
from testfleet.store.tables import (
    coverage_classes,
    coverage_functions,
    coverage_hits,
    coverage_parts,
    coverage_sessions,
)

PAGE = 500


def add_part(
    conn: Connection, session_id: str, build_id: int, blob: bytes, objects: int, now: datetime
) -> str:
    """Store a part of an open session of build `build_id`: "stored", or why not: "unknown"
    (no such session), "closed" (finished or cancelled), "other_build"."""
    row = conn.execute(
        select(coverage_sessions.c.state, coverage_sessions.c.build_id).where(
            coverage_sessions.c.id == session_id
        )
    ).first()
    if row is None:
        return "unknown"
    if row.state not in ("active", "stopping"):
        return "closed"
    if row.build_id != build_id:
        return "other_build"
    conn.execute(
        insert(coverage_parts).values(
            session_id=session_id, objects=objects, data=blob, received_at=now
        )
    )
    return "stored"


def part_page(
    conn: Connection, session_id: str, after: int, limit: int = 20
) -> list[tuple[int, bytes]]:
    """Up to `limit` of a session's parts stored after part `after`: (id, blob)."""
    rows = conn.execute(
        select(coverage_parts.c.id, coverage_parts.c.data)
        .where(coverage_parts.c.session_id == session_id, coverage_parts.c.id > after)
        .order_by(coverage_parts.c.id)
        .limit(limit)
    )
    return [(row.id, bytes(row.data)) for row in rows]


def decoded_page(
    conn: Connection, session_id: str, after: int, limit: int = 20
) -> tuple[int, list[Entry]]:
    """The entries of the next page of parts, and the last part id read (`after` if none)."""
    entries: list[Entry] = []
    last = after
    for part_id, blob in part_page(conn, session_id, after, limit):
        entries.extend(decode_part(blob).entries())
        last = part_id
    return last, entries


def hit_page(
    conn: Connection,
    session_ids: Sequence[str],
    after: tuple[str, int, str] | None,
    test: str | None = None,
    limit: int = 5000,
) -> list[tuple[str, int, str, int]]:
    """Finished sessions' masks in key order: (session, class index, test, mask)."""
    query = (
        select(coverage_hits)
        .where(coverage_hits.c.session_id.in_(list(session_ids)))
        .order_by(coverage_hits.c.session_id, coverage_hits.c.class_idx, coverage_hits.c.test)
        .limit(limit)
    )
    if test is not None:
        query = query.where(coverage_hits.c.test == test)
    if after is not None:
        s, c, t = after
        query = query.where(
            (coverage_hits.c.session_id > s)
            | ((coverage_hits.c.session_id == s) & (coverage_hits.c.class_idx > c))
            | (
                (coverage_hits.c.session_id == s)
                & (coverage_hits.c.class_idx == c)
                & (coverage_hits.c.test > t)
            )
        )
    return [
        (r.session_id, r.class_idx, r.test, mask_of(bytes(r.probes))) for r in conn.execute(query)
    ]


def add_hits(conn: Connection, session_id: str, rows: Sequence[tuple[int, str, int]]) -> None:
    """Store (class index, test, mask) rows of a finishing session."""
    if rows:
        conn.execute(
            insert(coverage_hits),
            [
                {"session_id": session_id, "class_idx": c, "test": t, "probes": mask_bytes(m)}
                for c, t, m in rows
            ],
        )


def clear_hits(conn: Connection, session_id: str) -> None:
    """Drop a session's masks (before they are written again)."""
    conn.execute(delete(coverage_hits).where(coverage_hits.c.session_id == session_id))


def finish_session(
    conn: Connection, session_id: str, state: str, covered: int, now: datetime
) -> None:
    """Close a session with its totals; its parts are no longer needed."""
    conn.execute(
        update(coverage_sessions)
        .where(coverage_sessions.c.id == session_id)
        .values(state=state, covered=covered, finished_at=now)
    )
    conn.execute(delete(coverage_parts).where(coverage_parts.c.session_id == session_id))


def discard_session_data(conn: Connection, session_id: str, now: datetime) -> None:
    """A cancelled session: its data is dropped."""
    conn.execute(delete(coverage_hits).where(coverage_hits.c.session_id == session_id))
    finish_session(conn, session_id, "cancelled", 0, now)


def class_page(
    conn: Connection, build_id: int, after: int = -1, limit: int = PAGE
) -> list[ClassRecord]:
    """A page of a build's classes in index order."""
    rows = conn.execute(
        select(
            coverage_classes.c.idx,
            coverage_classes.c.class_id,
            coverage_classes.c.name,
            coverage_classes.c.lines,
            coverage_classes.c.arcs,
        )
        .where(coverage_classes.c.build_id == build_id, coverage_classes.c.idx > after)
        .order_by(coverage_classes.c.idx)
        .limit(limit)
    )
    return [ClassRecord.from_row(r) for r in rows]


def class_named(
    conn: Connection, build_id: int, name: str
) -> tuple[ClassRecord, str | None] | None:
    """A class by name, with its source text."""
    row = conn.execute(
        select(coverage_classes).where(
            coverage_classes.c.build_id == build_id, coverage_classes.c.name == name
        )
    ).first()
    return (ClassRecord.from_row(row), row.source) if row is not None else None


def functions_of(
    conn: Connection, build_id: int, first_class: int, last_class: int
) -> list[FunctionRecord]:
    """The functions of classes `first_class..last_class`, in order."""
    rows = conn.execute(
        select(coverage_functions)
        .where(
            coverage_functions.c.build_id == build_id,
            coverage_functions.c.class_idx >= first_class,
            coverage_functions.c.class_idx <= last_class,
        )
        .order_by(coverage_functions.c.class_idx, coverage_functions.c.idx)
    )
    return [FunctionRecord.from_row(r) for r in rows]


def class_layout(conn: Connection, build_id: int) -> dict[str, tuple[int, int, int]]:
    """Every class of a build: name -> (index, class id, probe count). For checking parts."""
    rows = conn.execute(
        select(
            coverage_classes.c.name,
            coverage_classes.c.idx,
            coverage_classes.c.class_id,
            coverage_classes.c.lines,
            coverage_classes.c.arcs,
        ).where(coverage_classes.c.build_id == build_id)
    )
    return {r.name: (r.idx, r.class_id, len(r.lines) + len(r.arcs)) for r in rows}
