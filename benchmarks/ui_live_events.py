"""How soon an event reaches an open job page: 50 pages follow one job whose step prints a
line (with the time it was printed) every 100 ms; each page notes when each line appears in
its log view.

    python -m benchmarks.ui_live_events [--pages 50] [--lines 100]

Prints one JSON line. The latency of a line runs from the moment the step printed it (on the
agent) to the moment it is in the page's DOM (and, apart, to the moment its message reached
the page's socket): it includes the agent reading and sending it and the hub storing it, so
it bounds the time from the hub storing the event from above. Then the same job again with
as many plain live-channel clients and no browser: the hub's own share, without 50 renderers
competing for the CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import websockets
from playwright.sync_api import sync_playwright
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.jobs import start

from benchmarks.harness import lab, percentile

ARRIVALS = """(() => {
    window.__arrivals = [];
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener("message", (message) => {
                const now = performance.timeOrigin + performance.now();
                const found = /T (\\d+\\.\\d+)/.exec(message.data);
                if (found) window.__arrivals.push(now - Number(found[1]) * 1000);
            });
        }
    };
})();"""

WATCH = """() => {
    window.__latencies = [];
    const seen = new Set();
    new MutationObserver((changes) => {
        const now = performance.timeOrigin + performance.now();
        for (const change of changes) {
            for (const node of change.addedNodes) {
                const found = /T (\\d+\\.\\d+)/.exec(node.textContent || "");
                if (found && node.classList?.contains("log-line") && !seen.has(found[1])) {
                    seen.add(found[1]);
                    window.__latencies.push(now - Number(found[1]) * 1000);
                }
            }
        }
    }).observe(document.body, {childList: true, subtree: true});
}"""


def printer(lines: int, wait: float) -> dict[str, object]:
    code = (
        f"import time\ntime.sleep({wait})\n"
        f"for i in range({lines}):\n    print('T %.6f' % time.time(), flush=True)\n"
        "    time.sleep(0.1)\n"
    )
    return {
        "name": "live-latency",
        "tests": [
            {
                "name": "t",
                "steps": [
                    {
                        "name": "print",
                        "plugin": "cmd",
                        "params": {"executable": "python3", "args": ["-u", "-c", code]},
                    }
                ],
            }
        ],
    }


def in_browser(url: str, job_id: int, pages: int) -> tuple[list[float], list[float], float]:
    """Open `pages` job pages; returns each line's latency to the DOM and to the socket."""
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        opened_at = time.monotonic()
        opened = []
        for n in range(pages):
            if n % 10 == 0:
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_init_script(ARRIVALS)
            page = context.new_page()
            page.goto(f"{url}/ui/jobs/{job_id}")
            page.wait_for_selector('[data-step="print"]')
            page.evaluate(WATCH)
            opened.append(page)
        ready_after = time.monotonic() - opened_at
        page = opened[0]
        page.wait_for_selector(".page-head .badge:has-text('completed')", timeout=600_000)
        time.sleep(1)
        shown = [value for page in opened for value in page.evaluate("window.__latencies")]
        arrived = [value for page in opened for value in page.evaluate("window.__arrivals")]
        browser.close()
    return shown, arrived, ready_after


async def _socket_client(url: str, job_id: int, out: list[float]) -> None:
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "follow_job", "job_id": job_id}))
        async for text in socket:
            now = time.time()
            message = json.loads(text)
            if message["type"] == "job_end":
                return
            found = re.search(r"T (\d+\.\d+)", json.dumps(message))
            if found:
                out.append((now - float(found.group(1))) * 1000)


def on_sockets(url: str, job_id: int, clients: int) -> list[float]:
    """`clients` programs on the live channel (no browser): the hub's share of the latency."""
    out: list[float] = []

    async def run() -> None:
        live = url.replace("http://", "ws://") + "/api/v1/live"
        await asyncio.gather(*(_socket_client(live, job_id, out) for _ in range(clients)))

    asyncio.run(run())
    return out


def _stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None}
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "p95_ms": round(percentile(values, 95), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--lines", type=int, default=100)
    args = parser.parse_args()
    wait = 10 + args.pages * 1.5  # time to open every page before the first line
    with tempfile.TemporaryDirectory() as tmp, lab(Path(tmp), agents=1, slots=1) as (hub, _):
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            job_id = start(client, printer(args.lines, wait))
        shown, arrived, ready_after = in_browser(hub.url, job_id, args.pages)
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            job_id = start(client, printer(args.lines, 2))
        sockets = on_sockets(hub.url, job_id, args.pages)
    print(
        json.dumps(
            {
                "benchmark": "ui_live_events",
                "pages": args.pages,
                "lines": args.lines,
                "pages_open_s": round(ready_after, 1),
                "browser_in_dom": _stats(shown),
                "browser_at_socket": _stats(arrived),
                "live_channel_clients_no_browser": _stats(sockets),
                "lines_expected_per_mode": args.pages * args.lines,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
