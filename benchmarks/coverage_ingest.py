"""Ingest of one COVERAGE_DATA_PART of 65,535 ExecClassData at the hub; prints one JSON line.

A hub runs in this process (SQLite, or PostgreSQL with --backend postgresql) with a probe
speaking the real protocol over an in-memory socket (tests/support/fake_probe.py): each part
is timed from its frame handed to the hub until the hub's ACK, which it sends once the part
is checked against the build and committed to the store. Also reported: the CPU time this
process spent per part (the hub's event loop and store threads; the probe only queues the
frame), the frame's size, and the hub's stages for one part (read and check, encode).

With --socket the hub is a real `testfleet hub` process and the frames go over a real
WebSocket (uvicorn's): timed from the frame's send to the ACK's arrival, with the hub's own
time per part from its metrics (`testfleet_coverage_part_seconds`: frame read to commit).

Usage: python -m benchmarks.coverage_ingest [--parts 10] [--probes 20] [--backend sqlite]
       [--socket]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tests.support.fake_probe import FakeProbe, module
from tests.support.inproc import running_hub
from tests.support.processes import Hub
from websockets.sync.client import connect

from benchmarks.harness import fresh_postgres, metric, percentile
from testfleet.hub.coverage.parts import CheckedPart, parse_probe_frame
from testfleet.protocol.coverage import (
    MAX_PART_OBJECTS,
    PROBE_WS_PATH,
    CoverDataPart,
    ExecClassData,
    ProbeAck,
)
from testfleet.store.coverage_codec import encode_part


def frames(classes: list[object], parts: int, probes: int) -> list[str]:
    """`parts` frames, each with every class, a different third of the probes hit."""
    result = []
    for number in range(parts):
        data = [
            ExecClassData(
                id=c.id,  # type: ignore[attr-defined]
                className=c.name,  # type: ignore[attr-defined]
                probes=[(i + number) % 3 == 0 for i in range(probes)],
                testName=f"test_{number % 4}",
            )
            for c in classes
        ]
        result.append(CoverDataPart(sessionId="bench", data=data, seq=number + 1).model_dump_json())
    return result


async def measure(data_dir: Path, db_url: str | None, parts: int, probes: int) -> dict[str, object]:
    classes = [
        module(f"pkg{n // 500}/mod{n}.py", probes, {"f": (0, probes, "c")}, class_id=n)
        for n in range(MAX_PART_OBJECTS)
    ]
    texts = frames(classes, parts, probes)
    settings = {"db_url": db_url} if db_url else {}
    async with running_hub(data_dir, **settings) as hub:
        fake = FakeProbe(hub.hub, "bench-1", "bench", "1.0", classes)
        await fake.connect()
        fake.answer()
        response = await hub.api.post(
            "/api/v1/coverage/agents/bench-1/dispatch-action",
            json={"type": "START", "payload": {"sessionId": "bench"}},
        )
        assert response.status_code == 200, response.text
        layout = next(iter(hub.hub.probe_server._layouts.values()))
        seconds, cpu = [], []
        for number, text in enumerate(texts, 1):
            began, began_cpu = time.perf_counter(), time.process_time()
            fake.send_raw(text)
            while (await fake.expect(ProbeAck, within=60)).seq < number:
                pass
            seconds.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
        began = time.perf_counter()
        checked = parse_probe_frame(texts[0], layout)
        read = time.perf_counter() - began
        assert isinstance(checked, CheckedPart)
        began = time.perf_counter()
        blob = encode_part(checked.data)
        encode = time.perf_counter() - began
        stop = await hub.api.post(
            "/api/v1/coverage/agents/bench-1/dispatch-action",
            json={"type": "STOP", "payload": {"sessionId": "bench"}},
        )
        covered = stop.json()["sessions"][0]["totals"]
    ms = [s * 1000 for s in seconds]
    return {
        "objects_per_part": MAX_PART_OBJECTS,
        "probes_per_object": probes,
        "frame_mb": round(len(texts[0]) / 1e6, 1),
        "stored_blob_kb": round(len(blob) / 1e3),
        "parts": parts,
        "ingest_ms_p50": round(statistics.median(ms), 1),
        "ingest_ms_p90": round(percentile(ms, 90), 1),
        "ingest_ms_max": round(max(ms), 1),
        "ingest_cpu_ms_p50": round(statistics.median(cpu) * 1000, 1),
        "read_and_check_ms": round(read * 1000, 1),
        "encode_ms": round(encode * 1000, 1),
        "finished_session_covered": covered["covered"],
        "cpus": os.cpu_count(),
    }


def measure_socket(data_dir: Path, parts: int, probes: int) -> dict[str, object]:
    """The same parts over a real WebSocket to a real hub process."""
    classes = [
        {"id": n, "name": f"m{n}.py", "lines": list(range(1, probes + 1)), "functions": []}
        for n in range(MAX_PART_OBJECTS)
    ]
    register = {
        "type": "REGISTER",
        "agentId": "bench-1",
        "instanceId": "i",
        "app": "bench",
        "build": "1",
        "buildChecksum": "c",
        "classesCount": len(classes),
        "wireVersion": 1,
        "sessions": [],
    }
    hub = Hub(data_dir).start()
    try:
        url = hub.url.replace("http://", "ws://") + PROBE_WS_PATH
        with (
            connect(url, max_size=None, open_timeout=30) as socket,
            httpx.Client(base_url=hub.url, timeout=60) as api,
        ):
            socket.send(json.dumps(register))
            socket.recv(timeout=30)
            for start in range(0, len(classes), 10_000):
                chunk = {"type": "INIT_DATA_PART", "astEntities": classes[start : start + 10_000]}
                socket.send(json.dumps(chunk))
            socket.send(json.dumps({"type": "INITIALIZED", "msg": "Initialized"}))
            socket.recv(timeout=60)
            with ThreadPoolExecutor(1) as pool:
                started = pool.submit(
                    api.post,
                    "/api/v1/coverage/agents/bench-1/dispatch-action",
                    json={"type": "START", "payload": {"sessionId": "bench"}},
                )
                socket.recv(timeout=30)
                answer = {"type": "SESSION_STARTED", "sessionId": "bench", "testType": "M", "ts": 1}
                socket.send(json.dumps(answer))
                started.result(timeout=30).raise_for_status()
            ms = []
            for number, text in enumerate(frames_of_dicts(parts, probes), 1):
                began = time.perf_counter()
                socket.send(text)
                ack = json.loads(socket.recv(timeout=60))
                ms.append((time.perf_counter() - began) * 1000)
                assert ack == {"type": "ACK", "seq": number}, ack
            text = api.get("/metrics").text
    finally:
        hub.stop()
    hub_seconds = metric(text, "testfleet_coverage_part_seconds_sum")
    hub_parts = metric(text, "testfleet_coverage_part_seconds_count")
    return {
        "objects_per_part": MAX_PART_OBJECTS,
        "probes_per_object": probes,
        "parts": parts,
        "over_socket_ms_p50": round(statistics.median(ms), 1),
        "over_socket_ms_p90": round(percentile(ms, 90), 1),
        "hub_part_ms_mean": round(1000 * hub_seconds / hub_parts, 1),
        "cpus": os.cpu_count(),
    }


def frames_of_dicts(parts: int, probes: int) -> list[str]:
    """The frames of `frames`, built from plain dicts (faster for 65,535 objects)."""
    return [
        json.dumps(
            {
                "type": "COVERAGE_DATA_PART",
                "sessionId": "bench",
                "seq": number + 1,
                "data": [
                    {
                        "id": n,
                        "className": f"m{n}.py",
                        "probes": [(i + number) % 3 == 0 for i in range(probes)],
                        "testName": f"test_{number % 4}",
                    }
                    for n in range(MAX_PART_OBJECTS)
                ],
            }
        )
        for number in range(parts)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=10)
    parser.add_argument("--probes", type=int, default=20, help="probes per class")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--socket", action="store_true", help="a real hub over a real socket")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.socket:
            print(
                json.dumps(
                    {"socket": True, **measure_socket(Path(folder), args.parts, args.probes)}
                )
            )
            return
        if args.backend == "postgresql":
            with fresh_postgres() as url:
                result = asyncio.run(measure(Path(folder), url, args.parts, args.probes))
        else:
            result = asyncio.run(measure(Path(folder), None, args.parts, args.probes))
    print(json.dumps({"backend": args.backend, **result}))


if __name__ == "__main__":
    main()
