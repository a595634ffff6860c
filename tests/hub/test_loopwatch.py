"""The stall watch: a blocked event loop and the collector's pauses are measured and logged."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest

from testfleet.hub import loopwatch
from testfleet.hub.loopwatch import GcPauses, LoopWatch
from testfleet.hub.metrics import HubMetrics

pytestmark = pytest.mark.anyio


def test_collections_are_timed_by_generation_while_installed() -> None:
    with GcPauses() as pauses:
        gc.collect(2)
        gc.collect(0)
        taken = pauses.take()
        assert pauses.take() == []
    installed_after = [cb for cb in gc.callbacks if getattr(cb, "__self__", None) is pauses]
    assert [generation for generation, _ in taken][-2:] == [2, 0]
    assert all(seconds >= 0 for _, seconds in taken)
    assert installed_after == []


async def test_a_blocked_loop_and_a_collection_are_measured_and_the_stall_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = HubMetrics()
    watch = LoopWatch(metrics)
    callbacks_before = len(gc.callbacks)
    task = asyncio.create_task(watch.run())
    with caplog.at_level(logging.WARNING, logger="testfleet.hub.loopwatch"):
        await asyncio.sleep(0.15)
        time.sleep(0.25)  # noqa: ASYNC251 (holds the loop, as fleet-sized work on it would)
        gc.collect(2)
        await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert watch.worst >= 0.1
    stalls = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert stalls and stalls[0].startswith("the event loop stalled for ")
    full = metrics.registry.get_sample_value(
        "testfleet_gc_pause_seconds_count", {"generation": "2"}
    )
    assert full is not None and full >= 1
    over = metrics.registry.get_sample_value(
        "testfleet_event_loop_lag_seconds_bucket", {"le": "+Inf"}
    )
    within = metrics.registry.get_sample_value(
        "testfleet_event_loop_lag_seconds_bucket", {"le": "0.1"}
    )
    assert over is not None and within is not None and over - within >= 1  # the stall's sample
    assert len(gc.callbacks) == callbacks_before  # removed when the watch stops


async def test_a_collection_over_the_limit_is_logged_with_its_generation(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loopwatch, "WARN_AFTER", 0.0)
    task = asyncio.create_task(LoopWatch(HubMetrics()).run())
    with caplog.at_level(logging.WARNING, logger="testfleet.hub.loopwatch"):
        await asyncio.sleep(0.05)
        gc.collect(2)
        await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        m.startswith("a garbage collection (generation 2) held the hub for ") for m in messages
    )
