"""An application for the probe tests: imports the example shop only when told to run it
(after a session has started), and obeys one command per line on stdin:

    run ORDERS SEED    price ORDERS random orders
    web SKU TEST       one WSGI request through the test-name middleware
    thread ORDERS      start a thread that waits, then prices ORDERS orders
    release            let that thread run, and wait for it
    flush              (under a probe) send the coverage now and wait for the hub's ACK
    exit

Each command answers one line on stdout ("ok ..." or "error ...").
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

SHOP = Path(__file__).resolve().parents[2] / "examples" / "apps" / "shop"
GATE = threading.Event()
WORKERS: list[threading.Thread] = []


def main() -> None:
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "exit":
            print("ok bye", flush=True)
            return
        try:
            print("ok " + command(words), flush=True)
        except Exception as error:
            print(f"error {error!r}", flush=True)


def command(words: list[str]) -> str:
    if str(SHOP) not in sys.path:
        sys.path.insert(0, str(SHOP))
    if words[0] == "run":
        from shop.orders import simulate

        return str(simulate(int(words[1]), int(words[2])))
    if words[0] == "web":
        from shop.web import application

        from testfleet.probe.middleware import TestNameMiddleware

        app = TestNameMiddleware(application)
        environ = {"QUERY_STRING": f"sku={words[1]}", "HTTP_DRILL_TEST_NAME": words[2]}
        result = app(environ, lambda status, headers: None)
        body = b"".join(result)
        getattr(result, "close", lambda: None)()
        return body.decode()
    if words[0] == "thread":
        orders = int(words[1])

        def work() -> None:
            GATE.wait(60)
            from shop.orders import simulate

            simulate(orders, 5)

        WORKERS.append(threading.Thread(target=work, daemon=True))
        WORKERS[-1].start()
        return "started"
    if words[0] == "release":
        GATE.set()
        for worker in WORKERS:
            worker.join(60)
        return "joined"
    if words[0] == "flush":
        from testfleet import probe

        running = probe.current()
        return "no probe" if running is None else str(running.flush(30))
    raise ValueError(f"unknown command {words[0]!r}")


if __name__ == "__main__":
    main()
