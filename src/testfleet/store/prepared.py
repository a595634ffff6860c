"""Statements built once and reused with bound parameters.

Building a SQLAlchemy statement and its cache key costs more than running it on SQLite; the
hub's hot paths (task and step updates, event inserts) use these instead.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, update
from sqlalchemy.sql import Update

S = TypeVar("S")
_cache: dict[Hashable, Any] = {}


def prepared(key: Hashable, build: Callable[[], S]) -> S:
    """The statement for `key`, built by `build()` the first time."""
    try:
        return _cache[key]  # type: ignore[no-any-return]
    except KeyError:
        statement = _cache[key] = build()
        return statement


def update_by(table: Table, keys: tuple[str, ...], values: tuple[str, ...]) -> Update:
    """`UPDATE table SET v=:v_v ... WHERE k=:k_k ...`, cached per table, keys and columns."""

    def build() -> Update:
        return (
            update(table)
            .where(*(table.c[k] == bindparam(f"k_{k}") for k in keys))
            .values({v: bindparam(f"v_{v}") for v in values})
        )

    return prepared(("update", table.name, keys, values), build)


def update_params(keys: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The parameters for a statement from `update_by`."""
    return {**{f"k_{k}": v for k, v in keys.items()}, **{f"v_{k}": v for k, v in values.items()}}


def update_row(conn: Any, table: Table, keys: dict[str, Any], values: dict[str, Any]) -> int:
    """Update the row(s) matching `keys`; returns how many changed."""
    statement = update_by(table, tuple(keys), tuple(sorted(values)))
    return int(conn.execute(statement, update_params(keys, values)).rowcount)
