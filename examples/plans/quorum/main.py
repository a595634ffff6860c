"""Case `vote`: every instance signals its vote and waits for all; `verdict = "no"` fails
the instance, `verdict = "crash"` ends it without an outcome (a crash, with its stderr).
Case `linger`: instances wait for one more than there are, until `wait` runs out (for tests of
lost agents and terminated runs)."""

from __future__ import annotations

import os
import sys

from testfleet.sdk import InitContext, RunEnv, invoke_map


def vote(env: RunEnv, ctx: InitContext) -> None:
    verdict = env.params["verdict"]
    ctx.sync.signal_and_wait("voted", env.test_instance_count, timeout=60)
    ctx.sync.publish("votes", {"seq": ctx.global_seq, "group": env.test_group_id, "verdict": verdict})
    if verdict == "crash":
        print(f"instance {ctx.global_seq} is crashing on purpose", file=sys.stderr, flush=True)
        os._exit(3)
    if verdict != "yes":
        raise AssertionError(f"group {env.test_group_id} voted {verdict!r}")
    env.record_message("voted yes")


def linger(env: RunEnv, ctx: InitContext) -> None:
    ctx.sync.signal_entry("lingering")
    ctx.sync.barrier("lingering", env.test_instance_count + 1, timeout=float(env.params["wait"]))


if __name__ == "__main__":
    invoke_map({"vote": vote, "linger": linger})
