"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

BigId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit key that is still SQLite's auto-incrementing rowid."""


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC, returned timezone-aware: one meaning on every database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class utc_now(FunctionElement[datetime]):
    """The database's current time in UTC, naive like `UTCDateTime` stores it (set in
    statements, so that rows record when they changed by the database's clock)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utc_now, "postgresql")
def _utc_now_postgresql(element: utc_now, compiler: Any, **kw: Any) -> str:
    return "timezone('utc', statement_timestamp())"


@compiles(utc_now, "sqlite")
def _utc_now_sqlite(element: utc_now, compiler: Any, **kw: Any) -> str:
    return "strftime('%Y-%m-%d %H:%M:%f', 'now')"
