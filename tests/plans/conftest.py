"""Async tests here run on asyncio."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Every async test here runs on asyncio."""
    return "asyncio"
