"""Clone to the web UI answering: a fresh clone of this repository, `make up`, and the time
until `GET /ui/` answers 200.

    python -m benchmarks.first_run [--cold] [--pip]

`--cold` gives uv an empty cache (everything is downloaded); without it, uv's usual cache is
used, as on a machine that has installed once before. `--pip` takes the plain-pip fallback
(TESTFLEET_NO_UV=1). Prints one JSON line; the clone and its processes are removed after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="an empty uv cache")
    parser.add_argument("--pip", action="store_true", help="the plain-pip fallback")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "testfleet"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
        )
        if args.cold:
            env["UV_CACHE_DIR"] = str(Path(tmp) / "uv-cache")
        if args.pip:
            env["TESTFLEET_NO_UV"] = "1"
        began = time.monotonic()
        subprocess.run(["git", "clone", "--quiet", "--no-local", str(ROOT), str(clone)], check=True)
        cloned = time.monotonic() - began
        log = (Path(tmp) / "make.log").open("w")
        up = subprocess.Popen(
            ["make", "up", f"PORT={port}", f"DATA_DIR={tmp}/data"],
            cwd=clone,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        answered = None
        try:
            while time.monotonic() - began < LIMIT and up.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ui/", timeout=1).status_code == 200:
                        answered = time.monotonic() - began
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        finally:
            os.killpg(up.pid, signal.SIGTERM)
            try:
                up.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait(10)
            log.close()
        tail = (Path(tmp) / "make.log").read_text()[-2000:]
    print(
        json.dumps(
            {
                "benchmark": "first_run",
                "installer": "pip" if args.pip else "uv",
                "cache": "cold" if args.cold else "warm",
                "clone_s": round(cloned, 2),
                "clone_to_ui_s": round(answered, 2) if answered else None,
                "cpus": os.cpu_count(),
                **({} if answered else {"log_tail": tail}),
            }
        )
    )


if __name__ == "__main__":
    main()
