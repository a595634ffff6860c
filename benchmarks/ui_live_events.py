"""How soon an event reaches an open job page: 50 pages follow one job whose step prints a
line (with the time it was printed) every 100 ms; each page notes when each line appears in
its log view.

    python -m benchmarks.ui_live_events [--pages 50] [--lines 100]

Prints one JSON line. The latency of a line runs from the moment the step printed it (on the
agent) to the moment it is in the page's DOM: it includes the agent reading and sending it and
the hub storing it, so it bounds the time from the hub storing the event from above.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.jobs import start, wait_state

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
    new MutationObserver((changes) => {
        const now = performance.timeOrigin + performance.now();
        for (const change of changes) {
            for (const node of change.addedNodes) {
                const found = /T (\\d+\\.\\d+)/.exec(node.textContent || "");
                if (found && node.classList?.contains("log-line")) {
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--lines", type=int, default=100)
    args = parser.parse_args()
    wait = 10 + args.pages * 1.5  # time to open every page before the first line
    with (
        tempfile.TemporaryDirectory() as tmp,
        lab(Path(tmp), agents=1, slots=1) as (hub, _),
        httpx.Client(base_url=hub.url, timeout=30) as client,
        sync_playwright() as driver,
    ):
        job_id = start(client, printer(args.lines, wait))
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        opened_at = time.monotonic()
        pages = []
        for n in range(args.pages):
            if n % 10 == 0:
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_init_script(ARRIVALS)
            page = context.new_page()
            page.goto(f"{hub.url}/ui/jobs/{job_id}")
            page.wait_for_selector('[data-step="print"]')
            page.evaluate(WATCH)
            pages.append(page)
        ready_after = time.monotonic() - opened_at
        state = wait_state(client, job_id, timeout=wait + args.lines * 0.1 + 120)["state"]
        time.sleep(1)
        latencies = [value for page in pages for value in page.evaluate("window.__latencies")]
        arrivals = [value for page in pages for value in page.evaluate("window.__arrivals")]
        browser.close()
    print(
        json.dumps(
            {
                "benchmark": "ui_live_events",
                "pages": args.pages,
                "lines": args.lines,
                "job_state": state,
                "pages_open_s": round(ready_after, 1),
                "lines_seen": len(latencies),
                "lines_expected": args.pages * args.lines,
                "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
                "latency_ms_p95": round(percentile(latencies, 95), 1) if latencies else None,
                "latency_ms_max": round(max(latencies), 1) if latencies else None,
                "socket_arrival_ms_p50": round(statistics.median(arrivals), 1) if arrivals else None,
                "socket_arrival_ms_p95": round(percentile(arrivals, 95), 1) if arrivals else None,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
