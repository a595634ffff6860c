"""Running a case function: `invoke_map({"case": fn})` picks the case TEST_CASE names, gives
it the run environment and the init context, and records its outcome: returning normally is
a success, raising an exception a failure, anything harder (KeyboardInterrupt, SystemExit with
an error) a crash. The process then exits 0 on success and 1 otherwise."""

from __future__ import annotations

import asyncio
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from testfleet.sdk.blocking import BlockingSync
from testfleet.sdk.runenv import RunEnv
from testfleet.sdk.sync import SyncClient

CaseFunction = Callable[[RunEnv, "InitContext"], Any]


@dataclass
class InitContext:
    """What a case function gets besides its environment: its seqs and the sync client
    (`BlockingSync` for a plain function, `SyncClient` for an async one)."""

    global_seq: int
    group_seq: int
    sync: Any


def invoke_map(cases: Mapping[str, CaseFunction]) -> None:
    """Run the case this instance is for and exit with its outcome."""
    env = RunEnv.from_environment()
    fn = cases.get(env.test_case)
    if fn is None:
        message = f"unknown case {env.test_case!r}; this plan has: {', '.join(sorted(cases))}"
        env.record_outcome("failure", message)
        print(message, file=sys.stderr, flush=True)
        sys.exit(1)
    sys.exit(invoke(env, fn))


def invoke(env: RunEnv, fn: CaseFunction) -> int:
    """Run one case function and record its outcome; returns the exit code."""
    env.record_event("start", group=env.test_group_id, seq=env.global_seq)
    try:
        if inspect.iscoroutinefunction(fn):
            asyncio.run(_run_async(env, fn))
        else:
            _run_blocking(env, fn)
    except Exception as error:
        trace = traceback.format_exc()
        print(trace, file=sys.stderr, flush=True)
        env.record_outcome("failure", f"{type(error).__name__}: {error}")
        return 1
    except BaseException as error:
        env.record_outcome("crash", f"{type(error).__name__}: {error}")
        raise
    env.record_outcome("success")
    return 0


async def _run_async(env: RunEnv, fn: CaseFunction) -> None:
    client = SyncClient(env.sync_url, env.token)
    if env.sync_url:
        await client.connect()
    try:
        await fn(env, InitContext(env.global_seq, env.group_seq, client))
    finally:
        await client.close()


def _run_blocking(env: RunEnv, fn: CaseFunction) -> None:
    sync = BlockingSync(env.sync_url, env.token)
    if env.sync_url:
        sync.start()
    try:
        fn(env, InitContext(env.global_seq, env.group_seq, sync))
    finally:
        sync.close()
