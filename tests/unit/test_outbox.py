"""The agent's outbox: its own sequence numbers, kept until acknowledged."""

from __future__ import annotations

import json

from testfleet.agent.outbox import Outbox
from testfleet.protocol.states import RunState
from testfleet.protocol.wire import LogChunk, TaskFinished


def log(text: str) -> LogChunk:
    return LogChunk(seq=1, task_id=7, step_index=0, text=text)


def test_events_are_numbered_and_kept_until_acknowledged() -> None:
    outbox = Outbox()
    seqs = [outbox.add(log(str(i))) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert [json.loads(e.text)["seq"] for e in outbox.after(0)] == seqs
    outbox.ack(3)
    assert [e.seq for e in outbox.after(0)] == [4, 5]
    assert [e.seq for e in outbox.after(4)] == [5]
    outbox.ack(5)
    assert len(outbox) == 0 and outbox.emptied.is_set()


def test_a_fresh_agent_never_reuses_a_seq_the_hub_has() -> None:
    outbox = Outbox()
    outbox.resume_after(57)
    assert outbox.add(log("x")) == 58


def test_resume_drops_what_the_hub_stored_and_keeps_the_rest() -> None:
    outbox = Outbox()
    for i in range(4):
        outbox.add(log(str(i)))
    outbox.resume_after(2)
    assert [e.seq for e in outbox.after(0)] == [3, 4]
    assert outbox.add(log("next")) == 5


def test_unacknowledged_final_events_name_their_tasks() -> None:
    outbox = Outbox()
    outbox.add(TaskFinished(seq=1, task_id=7, state=RunState.PASSED), final_of_task=7)
    outbox.add(log("x"))
    assert outbox.unacked_final_tasks() == {7}
    outbox.ack(1)
    assert outbox.unacked_final_tasks() == set()
