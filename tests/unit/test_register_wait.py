"""The wait for an agent's REGISTER counts the hub's looking time, not its stalls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest

from testfleet.hub.agents.session import within_looking_time

pytestmark = pytest.mark.anyio
FRAME = {"type": "websocket.receive", "text": "{}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_frame_that_came_while_the_loop_was_stalled_is_taken() -> None:
    loop = asyncio.get_running_loop()
    frame: asyncio.Future[Mapping[str, Any]] = loop.create_future()

    async def receive() -> Mapping[str, Any]:
        return await frame

    began = time.monotonic()
    loop.call_later(0.05, time.sleep, 2.5)  # the hub stalls past the whole allowance
    loop.call_later(2.7, frame.set_result, FRAME)
    assert await within_looking_time(receive(), 2.0) == FRAME
    assert time.monotonic() - began > 2.0  # more wall time than allowed went by


async def test_nothing_within_the_allowance_is_none_and_the_receive_is_cancelled() -> None:
    loop = asyncio.get_running_loop()
    cancelled = asyncio.Event()

    async def receive() -> Mapping[str, Any]:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return FRAME

    began = loop.time()
    assert await within_looking_time(receive(), 0.3) is None
    assert 0.25 <= loop.time() - began < 2.0
    assert cancelled.is_set()
