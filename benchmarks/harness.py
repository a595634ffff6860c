"""Shared pieces of the benchmarks: a hub with agents, a fresh PostgreSQL database, stats."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
from tests.support.processes import Agent, Hub

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def metric(text: str, name: str, label: str | None = None) -> float:
    """The sum of a Prometheus metric's samples (those carrying `label`, e.g. 'state="x"')."""
    total = 0.0
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == name or (key.startswith(name + "{") and (label is None or label in key)):
            total += float(value)
    return total


@contextlib.contextmanager
def fresh_postgres(server_url: str = POSTGRES) -> Iterator[str]:
    """A new, empty PostgreSQL database for one benchmark; dropped afterwards."""
    import asyncpg

    name = f"tf_bench_{uuid.uuid4().hex[:10]}"
    dsn = server_url

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def lab(
    workdir: Path,
    *,
    agents: int,
    slots: int,
    db_url: str | None = None,
    hub_args: list[str] | None = None,
) -> Iterator[tuple[Hub, list[Agent]]]:
    """A hub and `agents` agents of `slots` slots each, all online; stopped afterwards."""
    hub = Hub(workdir, db_url=db_url, extra=[*(hub_args or []), "--log-level", "warning"])
    hub.start()
    started: list[Agent] = []
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            for index in range(agents):
                agent = Agent(workdir, hub.url, f"bench-{index}", slots=slots).start()
                started.append(agent)
            for agent in started:
                agent.wait_online(client)
        yield hub, started
    finally:
        for agent in started:
            with contextlib.suppress(Exception):
                agent.stop()
        hub.stop()


class MemorySampler:
    """Samples a process's resident memory in the background; `peak_mb` is the maximum."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak_mb = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.peak_mb = max(self.peak_mb, self.process.memory_info().rss / 2**20)
            await asyncio.sleep(self.interval)

    def __enter__(self) -> MemorySampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
