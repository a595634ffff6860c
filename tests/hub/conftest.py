"""In-process hub tests run on asyncio (anyio's pytest plugin)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Every test here runs on asyncio."""
    return "asyncio"
