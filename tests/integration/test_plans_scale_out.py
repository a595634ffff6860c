"""The sync service across hubs on one PostgreSQL, through reconnects, and behind auth; and a
run whose instances reach two hubs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testfleet.sdk import SyncClient, SyncError
from tests.support.plans import import_example_plans
from tests.support.postgres import fresh_database
from tests.support.processes import Agent, Hub, wait_until
from tests.support.proxy import CuttableProxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Hub]]:
    workdir = tmp_path_factory.mktemp("sync-hubs")
    with fresh_database() as url:
        a = Hub(workdir, db_url=url).start()
        b = Hub(workdir, db_url=url, extra=["--max-running-jobs", "0"])
        try:
            b.start()
            yield a, b
        finally:
            b.stop()
            a.stop()


def sync_url(hub: Hub | str, run: str) -> str:
    base = hub if isinstance(hub, str) else hub.url
    return base.replace("http://", "ws://") + f"/api/v1/sync/{run}"


def test_instances_on_two_hubs_meet_at_barriers_and_share_topics(hubs: tuple[Hub, Hub]) -> None:
    a, b = hubs

    async def scenario() -> None:
        clients = [SyncClient(sync_url(hub, "shared-run")) for hub in (a, b, a, b, a, b)]
        for client in clients:
            await client.connect()
        try:
            await clients[0].publish("early", {"from": "a"})
            late = await clients[1].subscribe("early")
            assert await late.next(timeout=5) == (1, {"from": "a"})
            waits = [asyncio.ensure_future(c.barrier("ready", 6, timeout=10)) for c in clients]
            seqs = [await c.signal_entry("ready") for c in clients]
            assert sorted(seqs) == [1, 2, 3, 4, 5, 6]
            await asyncio.gather(*waits)
            await clients[2].publish("early", "live")
            assert await late.next(timeout=5) == (2, "live")
            assert await clients[3].publish_many("early", ["x", "y"]) == [3, 4]
            assert [await late.next(timeout=5) for _ in range(2)] == [(3, "x"), (4, "y")]
        finally:
            for client in clients:
                await client.close()

    asyncio.run(scenario())


def test_sync_state_survives_a_clients_reconnect(hubs: tuple[Hub, Hub]) -> None:
    a, _ = hubs

    async def scenario(proxy: CuttableProxy) -> None:
        flaky = SyncClient(sync_url(f"http://127.0.0.1:{proxy.port}", "reconnect-run"))
        steady = SyncClient(sync_url(a, "reconnect-run"))
        await flaky.connect()
        await steady.connect()
        try:
            assert await flaky.signal_entry("s") == 1
            subscription = await flaky.subscribe("t")
            await steady.publish("t", 1)
            assert await subscription.next(timeout=5) == (1, 1)
            barrier = asyncio.ensure_future(flaky.barrier("s", 2, timeout=20))
            await asyncio.sleep(0.2)
            proxy.cut()
            await steady.publish("t", 2)
            await steady.signal_entry("s")
            await barrier  # answered after the reconnect
            assert await subscription.next(timeout=10) == (2, 2)  # nothing twice, nothing lost
            assert await flaky.signal_entry("s") == 3
            assert proxy.accepted >= 2
        finally:
            await flaky.close()
            await steady.close()

    with CuttableProxy(a.port) as proxy:
        asyncio.run(scenario(proxy))


def test_a_run_spreads_over_agents_on_two_hubs(hubs: tuple[Hub, Hub], tmp_path: Path) -> None:
    a, b = hubs
    agents = [
        Agent(tmp_path, hub.url, name, slots=1, extra=["--cache-dir", str(tmp_path / name)])
        for hub, name in ((a, "left-agent"), (b, "right-agent"))
    ]
    for agent in agents:
        agent.start()
    try:
        with httpx.Client(base_url=b.url, timeout=30) as client:
            for agent in agents:
                agent.wait_online(client)
            import_example_plans(client, "ping")
            composition = {
                "global": {"plan": "ping", "case": "ping", "total_instances": 4},
                "groups": [{"id": "all", "instances": {"count": 4}}],
            }
            composition["global"]["runner"] = "cluster:agents"
            task_id = client.post("/run", json=composition).json()["task_id"]
            found: dict[str, object] = {}

            def done() -> bool:
                found.update(client.post("/status", json={"task_id": task_id}).json())
                return found["states"][-1]["state"] == "complete"  # type: ignore[index]

            wait_until(done, 60, 0.2, "the run to finish")
            assert found["result"] == {
                "outcome": "success",
                "outcomes": {"all": {"ok": 4, "total": 4}},
            }
            instances = client.get(f"/api/v1/plan-runs/{task_id}").json()["groups"][0]["instances"]
            assert {i["agent"] for i in instances} == {"left-agent", "right-agent"}
    finally:
        for agent in agents:
            agent.stop()


def test_the_sync_service_wants_a_token_when_auth_is_on(tmp_path: Path) -> None:
    hub = Hub(tmp_path, auth=True)
    agent_token = hub.create_token("sync-agent", "agent")
    viewer_token = hub.create_token("sync-viewer", "viewer")
    hub.start()

    async def scenario() -> None:
        for token in (None, viewer_token):
            client = SyncClient(sync_url(hub, "guarded"), token, reconnect_for=2)
            with pytest.raises(SyncError) as refused:
                await client.connect()
            assert refused.value.code == "refused"
        async with SyncClient(sync_url(hub, "guarded"), agent_token) as client:
            assert await client.signal_entry("in") == 1

    try:
        asyncio.run(scenario())
    finally:
        hub.stop()
