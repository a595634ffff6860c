"""The SDK: importable without the hub's dependencies, speaking the sync protocol's shapes,
reading the run environment, and recording outcomes as the runner reads them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from testfleet.protocol.sync import SYNC_REQUESTS
from testfleet.sdk import RunEnv, invoke
from testfleet.sdk.sync import SyncClient

HUB_ONLY = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "uvicorn",
    "prometheus_client",
)


def test_the_sdk_imports_none_of_the_hubs_dependencies() -> None:
    code = (
        "import sys, testfleet.sdk; "
        f"print([m for m in sys.modules if m.split('.')[0] in {HUB_ONLY!r}])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.anyio
async def test_the_clients_requests_are_valid_protocol_messages() -> None:
    client = SyncClient("ws://127.0.0.1:9/api/v1/sync/r")
    futures = []
    for coroutine in (
        client.signal_entry("s"),
        client.barrier("s", 3, timeout=2.5),
        client.publish("t", {"any": ["json"]}),
    ):
        futures.append(asyncio.ensure_future(coroutine))
    await client.subscribe("t", after=4)
    await asyncio.sleep(0)
    messages = [json.loads(text) for text in client._outbox]
    kinds = [SYNC_REQUESTS.validate_python(m).type for m in messages]
    assert sorted(kinds) == ["BARRIER", "PUBLISH", "SIGNAL_ENTRY", "SUBSCRIBE"]
    signal = next(m for m in messages if m["type"] == "SIGNAL_ENTRY")
    assert signal["key"] == f"{client.client_id}:{signal['id']}"
    for future in futures:
        future.cancel()
    await client.close()


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "TEST_PLAN": "p",
        "TEST_CASE": "c",
        "TEST_RUN": "r",
        "TEST_INSTANCE_COUNT": "4",
        "TEST_GROUP_ID": "g",
        "TEST_GROUP_INSTANCE_COUNT": "2",
        "TEST_INSTANCE_PARAMS": "n=3|name=x",
        "TESTFLEET_INSTANCE_PARAMS_JSON": json.dumps({"n": 3, "name": "x", "on": True}),
        "TEST_OUTPUTS_PATH": str(tmp_path / "out"),
        "TEST_TEMP_PATH": str(tmp_path / "tmp"),
        "TESTFLEET_GLOBAL_SEQ": "3",
        "TESTFLEET_GROUP_SEQ": "1",
        "TESTFLEET_OUTCOME_PATH": str(tmp_path / "outcome.json"),
        **extra,
    }


def test_run_environment_and_outcomes(tmp_path: Path) -> None:
    env = RunEnv.from_environment(environment(tmp_path))
    assert env.params == {"n": 3, "name": "x", "on": True}
    assert (env.test_instance_count, env.global_seq, env.group_seq) == (4, 3, 1)
    env.record_metric("latency", 1.5, "ms", peer=2)

    def fails(env: RunEnv, ctx: object) -> None:
        raise ValueError("nope")

    assert invoke(env, fails) == 1
    outcome = json.loads((tmp_path / "outcome.json").read_text())
    assert outcome["outcome"] == "failure" and "ValueError: nope" in outcome["error"]
    assert invoke(env, lambda env, ctx: None) == 0  # the first outcome stands
    assert json.loads((tmp_path / "outcome.json").read_text())["outcome"] == "failure"
    events = [
        json.loads(line)["event"]["type"]
        for line in (tmp_path / "out" / "run.out").read_text().splitlines()
    ]
    assert events == ["start", "failure", "start", "success"]
    metric = json.loads((tmp_path / "out" / "metrics.out").read_text())
    assert metric["name"] == "latency" and metric["tags"] == {"peer": 2}


def test_params_without_json_fall_back_to_strings(tmp_path: Path) -> None:
    values = environment(tmp_path)
    del values["TESTFLEET_INSTANCE_PARAMS_JSON"]
    assert RunEnv.from_environment(values).params == {"n": "3", "name": "x"}
    del values["TEST_PLAN"]
    with pytest.raises(KeyError, match="TEST_PLAN"):
        RunEnv.from_environment(values)
