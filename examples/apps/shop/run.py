"""Launch the shop once a go-file exists (so a coverage session can start first):

    python run.py --go-file /tmp/go -- --orders 200
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path


def wait_for(go_file: Path, limit: float = 60.0) -> None:
    """Block until `go_file` exists (at most `limit` seconds)."""
    deadline = time.monotonic() + limit
    while not go_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{go_file} did not appear within {limit:g} s")
        time.sleep(0.02)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--go-file"]:
        wait_for(Path(args[1]))
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    sys.argv = ["shop.main", *args]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    runpy.run_module("shop.main", run_name="__main__")
