"""What the hub trusts an agent for: its own tasks only, its own name only, sequence numbers
that follow each other; and a revoked credential ends the connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select, text

from testfleet.hub.auth import Principal
from testfleet.protocol.states import RunState
from testfleet.protocol.wire import Ack, Error, LogChunk, RunTask, TaskFinished, TaskStarted, utcnow
from testfleet.store import tokens as token_store
from testfleet.store.tables import events
from tests.support.inproc import FakeAgent, eventually, one_test_job, running_hub

pytestmark = pytest.mark.anyio


def count_events(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


async def test_an_agent_may_not_report_on_another_agents_task(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        holder = await hub.agent("holder", labels={"pool": "h"})
        forger = await hub.agent("forger")
        job_id = await hub.start(one_test_job(devices={"labels": {"pool": "h"}}))
        task = await holder.expect(RunTask)
        before = await hub.hub.store.read(count_events)

        forger.event(TaskFinished(seq=1, task_id=task.task_id, state=RunState.FAILED))
        error = await forger.expect(Error)
        await forger.acked()  # its seq is used up: the agent moves on
        after = await hub.hub.store.read(count_events)
        holder.finish(task)
        status = await hub.wait(job_id)

    assert error.code == "not_your_task"
    assert after == before
    assert status.state == "completed"


async def test_events_for_unknown_tasks_are_refused_and_not_stored(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        before = await hub.hub.store.read(count_events)
        for task_id in (77, 78, 2**63 - 1):
            agent.event(LogChunk(seq=1, task_id=task_id, step_index=0, text="junk"))
        await agent.acked()
        after = await hub.hub.store.read(count_events)
        errors = [await agent.expect(Error) for _ in range(3)]

    assert after == before
    assert {e.code for e in errors} == {"unknown_task"}


async def test_a_gap_in_the_sequence_is_never_acknowledged_past(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        first = agent.event(TaskStarted(seq=1, task_id=task.task_id))
        await agent.acked()
        late = LogChunk(seq=first.seq + 2, task_id=task.task_id, step_index=0, text="third\n")
        agent.send(late)  # seq+2 arrives before seq+1
        gap = await agent.expect(Error)
        ack = await agent.expect(Ack)
        agent.send(LogChunk(seq=first.seq + 1, task_id=task.task_id, step_index=0, text="2nd\n"))
        agent.send(late)
        agent.seq = late.seq
        await agent.acked()
        logs = (await hub.api.get(f"/api/v1/jobs/{job_id}/logs")).text

    assert gap.code == "seq_gap"
    assert f"expected event {first.seq + 1}" in gap.message
    assert ack.seq == first.seq
    assert logs == "2nd\nthird\n"  # nothing dropped, in order


async def test_a_huge_sequence_number_is_not_adopted(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        agent.send(LogChunk(seq=2**62, task_id=1, step_index=0, text="x"))
        gap = await agent.expect(Error)
        await agent.disconnect()
        await agent.connect()

    assert gap.code == "seq_gap"
    assert agent.initialized is not None and agent.initialized.last_seq == 0


async def test_an_event_the_store_refuses_fails_its_task_and_the_agent_moves_on(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:

        def poison(conn: Connection) -> None:
            conn.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON events "
                    "WHEN NEW.data LIKE '%deadly%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )

        await hub.hub.store.write(poison)
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        agent.event(TaskStarted(seq=1, task_id=task.task_id))
        bad = agent.event(LogChunk(seq=1, task_id=task.task_id, step_index=0, text="deadly"))
        agent.event(LogChunk(seq=1, task_id=task.task_id, step_index=0, text="fine\n"))
        await agent.acked()
        refused = await agent.expect(Error)
        status = await hub.wait(job_id)
        logs = (await hub.api.get(f"/api/v1/jobs/{job_id}/logs")).text

    assert (refused.code, f"event {bad.seq}:" in refused.message) == ("event_refused", True)
    (only,) = status.runs[0].tests[0].tasks
    assert only.state == RunState.FAILED
    assert only.error is not None and "refused" in only.error
    assert logs == "fine\n"


async def agent_principal(hub_store: object, name: str, agent: str | None = None) -> Principal:
    from testfleet.store.db import Store

    assert isinstance(hub_store, Store)
    token_id, _ = await hub_store.write(
        token_store.create_token, name, "agent", utcnow(), agent_name=agent
    )
    return Principal(name=name, role="agent", token_id=token_id)


async def test_an_agent_token_is_bound_to_the_first_name_it_registers_with(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path, auth=True) as hub:
        who = await agent_principal(hub.hub.store, "rack1")
        real = FakeAgent(hub.hub, "rack1-node", [])
        await real.connect(who=who)
        other_name = FakeAgent(hub.hub, "someone-else", [])
        with pytest.raises(AssertionError, match="name_not_allowed"):
            await other_name.connect(who=who)
        stranger = await agent_principal(hub.hub.store, "stranger")
        await real.disconnect()
        await eventually(lambda: hub.hub.connections.named("rack1-node") is None, "hang-up")
        impostor = FakeAgent(hub.hub, "rack1-node", [])
        with pytest.raises(AssertionError, match="belongs to another credential"):
            await impostor.connect(who=stranger)
        for agent in (real, other_name, impostor):
            await agent.close()


async def test_a_new_credential_for_a_name_replaces_the_old_one(tmp_path: Path) -> None:
    async with running_hub(tmp_path, auth=True) as hub:
        old = await agent_principal(hub.hub.store, "n1", agent="node-1")
        agent = FakeAgent(hub.hub, "node-1", [])
        await agent.connect(who=old)
        new = await agent_principal(hub.hub.store, "n1-again", agent="node-1")  # revokes old
        closed = await agent.expect(Error, within=3)
        await eventually(lambda: agent.socket.close_code is not None, "the old socket closed")
        again = FakeAgent(hub.hub, "node-1", [], instance_id=agent.instance_id)
        await again.connect(who=new)
        for each in (agent, again):
            await each.close()

    assert (closed.code, closed.fatal) == ("token_revoked", True)
    assert agent.socket.close_reason == "the agent's token was revoked"


async def test_revoking_a_token_closes_its_agent_connection_within_a_second(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path, auth=True) as hub:
        who = await agent_principal(hub.hub.store, "n2")
        agent = FakeAgent(hub.hub, "node-2", [])
        await agent.connect(who=who)
        began = asyncio.get_running_loop().time()
        assert who.token_id is not None
        await hub.hub.store.write(token_store.revoke_token, who.token_id, utcnow())  # the CLI way
        await eventually(lambda: agent.socket.close_code is not None, "the socket closed", 1.5)
        took = asyncio.get_running_loop().time() - began
        await agent.close()

    assert took < 1.0
    assert agent.socket.close_code == 1008
