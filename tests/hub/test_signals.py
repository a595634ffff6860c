"""In-process wake-ups: a job's followers wake on every change, its runner only when a task
may have ended; a change between a read and the wait is never missed."""

from __future__ import annotations

import asyncio
import time

import pytest

from testfleet.hub.signals import Signals

pytestmark = pytest.mark.anyio


async def woke_within(waiting: asyncio.Task[None], seconds: float) -> bool:
    done, _ = await asyncio.wait({waiting}, timeout=seconds)
    return bool(done)


async def test_logs_wake_followers_and_a_task_end_wakes_the_runner() -> None:
    signals = Signals()
    follower = asyncio.create_task(signals.wait_job(7, signals.job_version(7), 5))
    runner = asyncio.create_task(signals.wait_tasks(7, signals.task_version(7), 5))
    await asyncio.sleep(0)

    signals.job_changed(7, tasks=False)  # a log line, a step
    assert await woke_within(follower, 1)
    assert not await woke_within(runner, 0.1)

    signals.job_changed(7)  # a task ended (or a stop was asked for)
    assert await woke_within(runner, 1)


async def test_a_change_before_the_wait_returns_at_once() -> None:
    signals = Signals()
    seen = signals.task_version(3)
    signals.job_changed(3)
    began = time.monotonic()
    await signals.wait_tasks(3, seen, 5)
    await signals.wait_job(3, 0, 5)
    assert time.monotonic() - began < 1


async def test_the_wait_ends_after_its_seconds() -> None:
    signals = Signals()
    began = time.monotonic()
    await signals.wait_tasks(1, signals.task_version(1), 0.05)
    assert 0.04 < time.monotonic() - began < 1
