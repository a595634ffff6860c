"""Many real agents (`testfleet.agent.Agent`) in one process, for tests of a fleet.

Run as `python -m tests.support.agent_swarm --hub URL --count N --status FILE`: N agents of
one host slot each, named `PREFIX-0000`..., until SIGTERM. Every half second FILE gets one
JSON object: how many are connected, and how many connection attempts failed and why
(`handshake_timeouts`: the hub did not complete the WebSocket handshake or answer REGISTER in
time; `refused`: the hub refused a registration; `failures`: any failed attempt).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from pathlib import Path


class Counts(logging.Handler):
    """Counts the agents' warnings about failed connection attempts."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failures = 0
        self.handshake_timeouts = 0
        self.refused = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "unreachable or connection lost" not in text:
            return
        self.failures += 1
        if "timed out" in text or "register_timeout" in text:
            self.handshake_timeouts += 1
        if "refused registration" in text:
            self.refused += 1


async def run(hub: str, count: int, prefix: str, status: Path) -> None:
    from testfleet.agent import Agent, AgentConfig

    counts = Counts()
    logging.getLogger("testfleet.agent").addHandler(counts)
    agents = [
        Agent(AgentConfig(hub_url=hub, name=f"{prefix}-{n:04d}", slots=1, guard_processes=False))
        for n in range(count)
    ]
    running = [asyncio.create_task(agent.run()) for agent in agents]
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    while not stopping.is_set():
        report = {
            "online": sum(agent.connected.is_set() for agent in agents),
            "failures": counts.failures,
            "handshake_timeouts": counts.handshake_timeouts,
            "refused": counts.refused,
            "exited": sum(task.done() for task in running),
        }
        partial = status.with_suffix(".tmp")
        partial.write_text(json.dumps(report))
        partial.replace(status)
        try:
            async with asyncio.timeout(0.5):
                await stopping.wait()
        except TimeoutError:
            pass
    for agent in agents:
        agent.stop()
    await asyncio.wait(running, timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", default="swarm")
    parser.add_argument("--status", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args.hub, args.count, args.prefix, args.status))


if __name__ == "__main__":
    main()
