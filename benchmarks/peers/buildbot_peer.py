"""Buildbot 4.3 peer of testfleet's trivial-job benchmark: a master and its workers on loopback.

Runs from its own virtual environment, so Buildbot's dependencies stay out of testfleet's:

    python3 -m venv .venv-peers
    .venv-peers/bin/pip install -r benchmarks/peers/requirements-buildbot.txt
    .venv-peers/bin/python benchmarks/peers/buildbot_peer.py --jobs 200

One builder whose single step runs `echo hi` on any of the workers; builds are forced through
the REST API (JSON-RPC `force` on a ForceScheduler). Phase A forces builds one at a time and
times each until its build request is complete; phase B forces many at once and times them all.
Prints one JSON line on stdout; progress goes to stderr.

"completed" counts build requests that finished with SUCCESS; "failed" counts those that
finished otherwise plus forces the master rejected; jobs_per_s is completed / seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
BUILDER = "trivial"
SCHEDULER = "force"
PASSWORD = "peer-secret"
POLL_S = 0.02  # phase A: how often the build request's state is read
BATCH_POLL_S = 0.25  # phase B: how often "is any build request left?" is asked (~7 ms CPU)
SUCCESS = 0  # buildbot.process.results.SUCCESS
HEADERS = {"accept": "application/json"}  # compact JSON; other clients get it indented

MASTER_CFG = """\
# Written by testfleet's benchmarks/peers/buildbot_peer.py.
from buildbot.plugins import schedulers, steps, util, worker

c = BuildmasterConfig = {{}}
c["title"] = "testfleet peer"
c["buildbotURL"] = "http://127.0.0.1:{www}/"
c["buildbotNetUsageData"] = None
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["protocols"] = {{"pb": {{"port": "tcp:{pb}:interface=127.0.0.1"}}}}
c["www"] = {{"port": "tcp:{www}:interface=127.0.0.1", "plugins": {{}}}}
c["change_source"] = []
c["collapseRequests"] = False
c["workers"] = [worker.Worker(name, {password!r}, max_builds=1) for name in {names!r}]
c["schedulers"] = [schedulers.ForceScheduler(name={scheduler!r}, builderNames=[{builder!r}])]
factory = util.BuildFactory()
factory.addStep(steps.ShellCommand(name="say", command=["echo", "hi"]))
c["builders"] = [
    util.BuilderConfig(
        name={builder!r}, workernames={names!r}, factory=factory, collapseRequests=False
    )
]
"""


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[buildbot-peer] {message}", file=sys.stderr, flush=True)


class Deadline:
    """The overall time bound of the run."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        """Seconds left (at least 0), at most `cap`."""
        left = max(0.0, self.end - time.monotonic())
        return left if cap is None else min(left, cap)

    def check(self, what: str) -> None:
        """Raise if the time is up."""
        if self.left() <= 0:
            raise TimeoutError(f"--timeout reached while {what}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_tool(args: list[str], timeout: float) -> None:
    """Run a buildbot / buildbot-worker command; raise with its output if it fails."""
    result = subprocess.run(
        args,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=max(timeout, 1.0),
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}")


def daemon_pid(basedir: Path) -> int | None:
    """The pid of the twistd daemon running in `basedir`, if it is alive."""
    try:
        pid = int((basedir / "twistd.pid").read_text().strip())
        if Path(f"/proc/{pid}/cwd").resolve() != basedir.resolve():
            return None  # a stale pid file whose number now belongs to someone else
    except (OSError, ValueError):
        return None
    return pid


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time a process has used so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a note that it is missing."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} missing)"


@dataclass
class BuildbotLab:
    """A master with an SQLite database and `workers` workers, each a real process."""

    workdir: Path
    workers: int
    pb_port: int = field(default_factory=free_port)
    www_port: int = field(default_factory=free_port)

    @property
    def names(self) -> list[str]:
        """Worker names."""
        return [f"worker{i}" for i in range(self.workers)]

    @property
    def master_dir(self) -> Path:
        """The master's basedir."""
        return self.workdir / "master"

    @property
    def worker_dirs(self) -> list[Path]:
        """The workers' basedirs."""
        return [self.workdir / name for name in self.names]

    @property
    def api(self) -> str:
        """Base URL of the REST API."""
        return f"http://127.0.0.1:{self.www_port}/api/v2"

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by the master, and by all workers together."""
        master = cpu_seconds(daemon_pid(self.master_dir))
        return master, sum(cpu_seconds(daemon_pid(path)) for path in self.worker_dirs)

    def create(self, deadline: Deadline) -> None:
        """Create the master's and the workers' basedirs."""
        run_tool([str(BIN / "buildbot"), "create-master", "-q", str(self.master_dir)], 120)
        (self.master_dir / "master.cfg").write_text(
            MASTER_CFG.format(
                www=self.www_port,
                pb=self.pb_port,
                password=PASSWORD,
                names=self.names,
                scheduler=SCHEDULER,
                builder=BUILDER,
            )
        )
        run_tool([str(BIN / "buildbot"), "checkconfig", str(self.master_dir)], deadline.left(60))
        for name, path in zip(self.names, self.worker_dirs, strict=True):
            command = [str(BIN / "buildbot-worker"), "create-worker", "-q", str(path)]
            run_tool([*command, f"127.0.0.1:{self.pb_port}", name, PASSWORD], deadline.left(60))

    def start(self, deadline: Deadline) -> None:
        """Start the master, then the workers; wait until every worker is connected."""
        log(f"starting master (www 127.0.0.1:{self.www_port}, pb 127.0.0.1:{self.pb_port})")
        try:
            run_tool([str(BIN / "buildbot"), "start", str(self.master_dir)], deadline.left(120))
        except (RuntimeError, subprocess.TimeoutExpired):
            log(tail(self.master_dir / "twistd.log"))
            raise
        for path in self.worker_dirs:
            run_tool([str(BIN / "buildbot-worker"), "start", str(path)], deadline.left(60))
        self.wait_connected(deadline)

    def wait_connected(self, deadline: Deadline, bound_s: float = 60.0) -> None:
        """Wait (at most `bound_s`) until the master lists every worker as connected."""
        limit = time.monotonic() + deadline.left(bound_s)
        connected = 0
        with httpx.Client(base_url=self.api, headers=HEADERS, timeout=5) as client:
            for _ in range(int(bound_s / 0.1) + 1):
                try:
                    workers = client.get("/workers").json()["workers"]
                    connected = sum(1 for w in workers if w.get("connected_to"))
                except (httpx.HTTPError, ValueError, KeyError):
                    connected = 0
                if connected == self.workers:
                    log(f"{connected} workers connected")
                    return
                if time.monotonic() >= limit:
                    break
                time.sleep(0.1)
        for path in self.worker_dirs:
            log(tail(path / "twistd.log", 10))
        raise TimeoutError(f"only {connected} of {self.workers} workers connected")

    def stop(self) -> None:
        """Stop workers, then the master; SIGKILL whatever is still alive afterwards."""
        daemons = [(BIN / "buildbot-worker", path) for path in self.worker_dirs]
        daemons.append((BIN / "buildbot", self.master_dir))
        for tool, basedir in daemons:
            if daemon_pid(basedir) is None:
                continue
            try:
                subprocess.run(
                    [str(tool), "stop", str(basedir)],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=40,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                log(f"{tool.name} stop {basedir.name} timed out")
            # `stop` gives up after 10 s; a master with builds still queued takes longer.
            for _ in range(200):
                if daemon_pid(basedir) is None:
                    break
                time.sleep(0.1)
            pid = daemon_pid(basedir)
            if pid is not None:
                log(f"killing {basedir.name} (pid {pid})")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                for _ in range(50):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.1)


class ForceError(RuntimeError):
    """The master refused a force."""


async def force(client: httpx.AsyncClient) -> int:
    """Force one build of the builder; returns its build request id."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "force",
        "params": {"builderNames": [BUILDER], "reason": "peer benchmark", "owner": "peer"},
    }
    response = await client.post(f"/forceschedulers/{SCHEDULER}", json=body)
    reply = response.json()
    if response.status_code != 200 or "error" in reply:
        raise ForceError(f"force: HTTP {response.status_code} {reply.get('error')}")
    _buildsetid, request_ids = reply["result"]  # [bsid, {builderid: brid}]
    return int(next(iter(request_ids.values())))


async def single_latencies(api: str, count: int, deadline: Deadline) -> list[float]:
    """Submit-to-complete times (ms) of `count` builds forced one at a time."""
    times: list[float] = []
    async with httpx.AsyncClient(base_url=api, headers=HEADERS, timeout=30) as client:
        for index in range(count):
            deadline.check("running phase A")
            began = time.perf_counter()
            request_id = await force(client)
            limit = time.monotonic() + deadline.left(120)
            params = {"field": ["complete", "results"]}
            for _ in range(int(120 / POLL_S) + 1):
                reply = await client.get(f"/buildrequests/{request_id}", params=params)
                request = reply.json()["buildrequests"][0]
                if request["complete"]:
                    break
                if time.monotonic() >= limit:
                    raise TimeoutError(f"build request {request_id} did not complete")
                await asyncio.sleep(POLL_S)
            times.append((time.perf_counter() - began) * 1000)
            if request["results"] != SUCCESS:
                log(f"single build {index} finished with results={request['results']}")
            await asyncio.sleep(0.05)  # one build at a time, the master idle in between
    return times


async def unfinished(client: httpx.AsyncClient, after: int, limit: int | None = None) -> int:
    """How many build requests with an id above `after` are not complete (at most `limit`)."""
    fields = ["buildrequestid", "complete"]  # a filtered field must also be selected
    params: dict[str, Any] = {"buildrequestid__gt": after, "complete": "false", "field": fields}
    if limit is not None:
        params["limit"] = limit
    reply = await client.get("/buildrequests", params=params)
    reply.raise_for_status()
    return len(reply.json()["buildrequests"])


async def last_request_id(client: httpx.AsyncClient) -> int:
    """The highest build request id so far (0 if none)."""
    params: dict[str, Any] = {"order": "-buildrequestid", "limit": 1, "field": "buildrequestid"}
    reply = await client.get("/buildrequests", params=params)
    reply.raise_for_status()
    requests = reply.json()["buildrequests"]
    return int(requests[0]["buildrequestid"]) if requests else 0


async def throughput(api: str, jobs: int, concurrency: int, deadline: Deadline) -> dict[str, Any]:
    """Force `jobs` builds at once; time from the first force until all are complete."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=api, headers=HEADERS, timeout=60, limits=limits
    ) as client:
        after = await last_request_id(client)
        semaphore = asyncio.Semaphore(concurrency)
        rejected = 0

        async def submit() -> None:
            nonlocal rejected
            async with semaphore:
                try:
                    await asyncio.wait_for(force(client), deadline.left(60) or 0.001)
                except (ForceError, httpx.HTTPError, TimeoutError, ValueError) as error:
                    rejected += 1
                    if rejected <= 3:
                        log(f"force failed: {error!r}")

        cpu_began = time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(submit() for _ in range(jobs)))
        submitted = time.perf_counter() - began
        log(f"forced {jobs - rejected} builds in {submitted:.1f} s ({rejected} rejected)")
        left, next_report, errors = jobs, began + 5, 0
        for _ in range(int(deadline.left() / BATCH_POLL_S) + 2):
            report = time.perf_counter() >= next_report
            try:
                # A cheap "any left?" poll; the full count only for the progress line.
                left = await unfinished(client, after, None if report else 1)
                errors = 0
            except (httpx.HTTPError, ValueError) as error:
                errors += 1
                log(f"poll failed: {error!r}")
                if errors >= 10:
                    raise RuntimeError("10 polls in a row failed") from error
            if left == 0 or deadline.left() <= 0:
                break
            if report:
                log(f"{left} builds not finished after {time.perf_counter() - began:.0f} s")
                next_report = time.perf_counter() + 5
            await asyncio.sleep(BATCH_POLL_S)
        seconds = time.perf_counter() - began
        client_cpu = time.process_time() - cpu_began
        params = {
            "buildrequestid__gt": after,
            "complete": "true",
            "field": ["buildrequestid", "complete", "results"],
        }
        listing = await client.get("/buildrequests", params=params)
        listing.raise_for_status()
        finished = listing.json()["buildrequests"]
    succeeded = sum(1 for r in finished if r["results"] == SUCCESS)
    log(
        f"{len(finished)} finished ({succeeded} succeeded) in {seconds:.1f} s; "
        f"{jobs - rejected - len(finished)} unfinished; client CPU {client_cpu:.1f} s"
    )
    return {
        "jobs": jobs,
        "completed": succeeded,
        "failed": len(finished) - succeeded + rejected,
        "seconds": round(seconds, 3),
        "jobs_per_s": round(succeeded / seconds, 1) if seconds > 0 else 0.0,
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`, interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="builds forced at once (phase B)")
    parser.add_argument("--single", type=int, default=20, help="builds one at a time (phase A)")
    parser.add_argument("--workers", type=int, default=2, help="buildbot-worker processes")
    parser.add_argument("--concurrency", type=int, default=16, help="forces in flight (B)")
    parser.add_argument("--timeout", type=float, default=600, help="overall bound, seconds")
    parser.add_argument(
        "--workdir", type=Path, help="basedirs go here and are kept (default: a temp dir, removed)"
    )
    args = parser.parse_args()
    if args.jobs < 1 or args.single < 0 or args.workers < 1 or args.concurrency < 1:
        parser.error("--jobs, --workers and --concurrency must be >= 1, --single >= 0")
    return args


def main() -> int:
    """Run both phases on a fresh Buildbot; print the JSON line."""
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally blocks run
    import buildbot

    deadline = Deadline(args.timeout)
    if args.workdir is None:
        workdir, keep = Path(tempfile.mkdtemp(prefix="tf-buildbot-peer-")), False
    else:
        workdir, keep = args.workdir.resolve(), True
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):
            raise SystemExit(f"--workdir {workdir} is not empty")
    lab = BuildbotLab(workdir, args.workers)
    times: list[float] = []
    try:
        lab.create(deadline)
        try:
            lab.start(deadline)
            log(f"buildbot {buildbot.version} up; phase A: {args.single} builds one at a time")
            if args.single:
                times = asyncio.run(single_latencies(lab.api, args.single, deadline))
                log(f"phase A: p50 {percentile(times, 50):.1f} ms")
            log(f"phase B: {args.jobs} builds at once")
            master_cpu, workers_cpu = lab.cpu()
            result = asyncio.run(throughput(lab.api, args.jobs, args.concurrency, deadline))
            master_now, workers_now = lab.cpu()
            log(
                f"phase B CPU: master {master_now - master_cpu:.1f} s, "
                f"workers {workers_now - workers_cpu:.1f} s"
            )
        finally:
            lab.stop()
    finally:
        if keep:
            log(f"basedirs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    line = {
        "peer": "buildbot",
        "buildbot_version": buildbot.version,
        "workers": args.workers,
        **result,
        "single_p50_ms": round(percentile(times, 50), 1) if times else None,
        "single_p95_ms": round(percentile(times, 95), 1) if times else None,
    }
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
