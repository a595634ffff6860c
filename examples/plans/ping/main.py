"""Instances publish their addresses, meet at a barrier, ping their neighbour over TCP, and
wait for each other before they stop listening."""

from __future__ import annotations

import asyncio
import time

from testfleet.sdk import InitContext, RunEnv, invoke_map


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line.replace(b"ping", b"pong", 1))
        await writer.drain()
    writer.close()


async def ping(env: RunEnv, ctx: InitContext) -> None:
    count = env.test_instance_count
    wait = float(env.params["wait"])
    server = await asyncio.start_server(answer, env.params["host"], 0)
    port = server.sockets[0].getsockname()[1]
    me = {"seq": ctx.global_seq, "group": env.test_group_id, "host": env.params["host"], "port": port}
    await ctx.sync.publish("peers", me)

    peers: dict[int, dict[str, object]] = {}
    subscription = await ctx.sync.subscribe("peers")
    while len(peers) < count:
        _, peer = await subscription.next(timeout=wait)
        peers[peer["seq"]] = peer
    await subscription.cancel()
    await ctx.sync.signal_and_wait("listening", count, timeout=wait)

    neighbour = peers[ctx.global_seq % count + 1]
    reader, writer = await asyncio.open_connection(neighbour["host"], neighbour["port"])
    for round_ in range(int(env.params["rounds"])):
        started = time.perf_counter()
        writer.write(f"ping {ctx.global_seq} {round_}\n".encode())
        reply = await asyncio.wait_for(reader.readline(), wait)
        if reply != f"pong {ctx.global_seq} {round_}\n".encode():
            raise AssertionError(f"instance {neighbour['seq']} answered {reply!r}")
        env.record_metric("rtt", (time.perf_counter() - started) * 1000, "ms", peer=neighbour["seq"])
    writer.close()
    env.record_message("pinged instance %s %s times", neighbour["seq"], env.params["rounds"])

    await ctx.sync.signal_and_wait("done", count, timeout=wait)
    server.close()


if __name__ == "__main__":
    invoke_map({"ping": ping})
