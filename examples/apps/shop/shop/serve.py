"""Serve the shop over HTTP (wsgiref): `python -m shop.serve --port 8000`, then
`curl -H 'drill-test-name: test_apple' 'http://127.0.0.1:8000/price?sku=apple'`.

Requests carry their test's name in `drill-test-name` (or `X-Test-Name`); under a testfleet
probe, the middleware records what each request runs under that test. Without testfleet
installed the shop serves all the same.
"""

from __future__ import annotations

import argparse
from wsgiref.simple_server import make_server

from shop.web import application


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description="Serve the shop.")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    app = application
    try:
        from testfleet.probe.middleware import TestNameMiddleware
    except ImportError:
        pass
    else:
        app = TestNameMiddleware(application)  # type: ignore[assignment]
    with make_server("127.0.0.1", args.port, app) as server:  # type: ignore[arg-type]
        print(f"shop on http://127.0.0.1:{args.port}/price?sku=apple", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
