"""Bounded types for every number and text that reaches the store.

The store's integers are 64-bit and its text columns refuse NUL characters, so the models of
the API and of the wire use these instead of a bare `int` or `str`: a value out of range is a
validation error that names its place, never a database error later.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("text may not contain NUL characters (\\x00)")
    return text


Id = Annotated[int, Field(ge=1, le=INT64_MAX)]
"""A row id (a job, a task, a token...)."""

Seq = Annotated[int, Field(ge=1, le=INT64_MAX)]
"""An agent's event sequence number."""

Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""A non-negative 64-bit number."""

Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
"""A number stored in a 32-bit column (an exit code)."""

Text = Annotated[str, AfterValidator(_no_nul)]
"""Text stored in a text column: no NUL characters."""
