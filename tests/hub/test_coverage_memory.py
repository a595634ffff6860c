"""Finishing a large session stays small: the hub folds a session's stored parts a page at a
time into one bit mask per (module, test), and writes reports module by module (Drill4J's
admin ran out of memory loading a finishing session whole)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from tests.hub.test_coverage_sessions import action, start, stop
from tests.support.fake_probe import FakeProbe, module
from tests.support.inproc import running_hub

pytestmark = pytest.mark.anyio

MODULES, FUNCTIONS, PROBES_EACH = 1_000, 100, 2  # 100,000 functions, 200,000 probes
PARTS = 24  # each part: every module, for a test of its own


async def test_finishing_a_session_of_100000_functions_stays_small(tmp_path: Path) -> None:
    classes = [
        module(
            f"pkg{m // 100}/mod{m}.py",
            FUNCTIONS * PROBES_EACH,
            {f"f{n}": (n * PROBES_EACH, PROBES_EACH, f"c{m}-{n}") for n in range(FUNCTIONS)},
            class_id=m,
        )
        for m in range(MODULES)
    ]
    sent = 0
    async with running_hub(tmp_path) as hub:
        fake = FakeProbe(hub.hub, "big-1", "big", "1.0", classes)
        await fake.connect()
        fake.answer()
        await action(hub, start("big"), app="big")
        for number in range(PARTS):
            hits = {c.name: list(range(number % 7, len(c.lines), 3)) for c in classes}
            part = fake.part("big", hits, test=f"test_{number}")
            sent += len(part.model_dump_json())
            await fake.acked()

        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            stopped = await action(hub, stop("big"), app="big")
            _, finish_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            report = await hub.api.get("/api/v1/coverage/sessions/big/report?format=lcov")
            _, report_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    info = stopped.json()["sessions"][0]
    assert info["state"] == "finished"
    assert info["totals"] == {"covered": 200_000, "total": 200_000, "percent": 100.0}
    assert report.text.count("end_of_record") == MODULES
    # Measured: 29 MB of parts sent; finishing peaked at 9 MB, the LCOV report at 27 MB (most
    # of it the whole body, which httpx's in-process transport keeps).
    assert finish_peak < min(sent / 2, 20_000_000), f"finishing: {finish_peak / 1e6:.1f} MB"
    assert report_peak < 45_000_000, f"the report peaked at {report_peak / 1e6:.1f} MB"
