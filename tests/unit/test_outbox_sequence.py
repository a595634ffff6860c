"""The agent's outbox: its own event numbers, kept until the hub acknowledges them."""

from __future__ import annotations

import json

from testfleet.agent.outbox import Outbox
from testfleet.protocol.states import RunState
from testfleet.protocol.wire import LogChunk, StepFinished, TaskFinished


def log(text: str, task_id: int = 7) -> LogChunk:
    """A log event (its seq is the outbox's to set)."""
    return LogChunk(seq=1, task_id=task_id, step_index=0, text=text)


def finished(task_id: int) -> TaskFinished:
    """A task's final event."""
    return TaskFinished(seq=1, task_id=task_id, state=RunState.PASSED)


def pending(outbox: Outbox, after: int = 0) -> list[int]:
    """The seqs the outbox would (re)send after `after`."""
    return [entry.seq for entry in outbox.after(after)]


def test_events_are_numbered_from_one_in_order() -> None:
    outbox = Outbox()
    assert outbox.next_seq == 1
    assert [outbox.add(log(str(i))) for i in range(5)] == [1, 2, 3, 4, 5]
    assert outbox.next_seq == 6
    assert len(outbox) == 5


def test_the_seq_is_written_into_the_encoded_event() -> None:
    outbox = Outbox()
    outbox.add(log("a"))
    outbox.add(StepFinished(seq=99, task_id=7, step_index=0, state=RunState.FAILED, exit_code=3))
    first, second = outbox.after(0)
    assert (json.loads(first.text)["seq"], json.loads(first.text)["text"]) == (1, "a")
    decoded = json.loads(second.text)
    assert (decoded["seq"], decoded["type"], decoded["exit_code"]) == (2, "STEP_FINISHED", 3)


def test_after_lists_what_is_still_to_send() -> None:
    outbox = Outbox()
    for i in range(4):
        outbox.add(log(str(i)))
    assert pending(outbox) == [1, 2, 3, 4]
    assert pending(outbox, after=2) == [3, 4]
    assert pending(outbox, after=4) == []


def test_ack_drops_everything_up_to_its_seq() -> None:
    outbox = Outbox()
    for i in range(5):
        outbox.add(log(str(i)))
    outbox.ack(3)
    assert pending(outbox) == [4, 5]
    assert not outbox.emptied.is_set()
    outbox.ack(2)  # an older ack changes nothing
    assert pending(outbox) == [4, 5]
    outbox.ack(5)
    assert (len(outbox), pending(outbox)) == (0, [])
    assert outbox.emptied.is_set()
    assert outbox.add(log("later")) == 6  # acks never rewind the numbering


def test_emptied_and_changed_follow_the_queue() -> None:
    outbox = Outbox()
    assert outbox.emptied.is_set() and not outbox.changed.is_set()
    outbox.add(log("x"))
    assert outbox.changed.is_set() and not outbox.emptied.is_set()


def test_resume_after_drops_what_the_hub_stored_and_keeps_the_rest() -> None:
    outbox = Outbox()
    for i in range(4):
        outbox.add(log(str(i)))
    outbox.resume_after(2)
    assert pending(outbox) == [3, 4]
    assert outbox.add(log("next")) == 5


def test_resume_after_everything_empties_the_outbox() -> None:
    outbox = Outbox()
    for i in range(3):
        outbox.add(log(str(i)))
    outbox.resume_after(3)
    assert len(outbox) == 0 and outbox.emptied.is_set()
    assert outbox.add(log("next")) == 4


def test_a_fresh_outbox_never_reuses_a_seq_the_hub_has_seen() -> None:
    # The agent restarted: its new outbox starts at 1, but the hub stored up to 57.
    outbox = Outbox()
    outbox.resume_after(57)
    assert outbox.next_seq == 58
    assert outbox.add(log("x")) == 58
    assert pending(outbox) == [58]


def test_a_hub_behind_the_agent_does_not_rewind_the_numbering() -> None:
    # The hub stored less than the agent numbered (e.g. events lost in flight): resend them,
    # and keep counting from where the agent is.
    outbox = Outbox()
    for i in range(6):
        outbox.add(log(str(i)))
    outbox.ack(2)
    outbox.resume_after(4)
    assert pending(outbox) == [5, 6]
    outbox.resume_after(1)
    assert pending(outbox) == [5, 6]
    assert outbox.add(log("next")) == 7


def test_unacked_final_tasks_name_the_tasks_whose_end_is_unconfirmed() -> None:
    outbox = Outbox()
    outbox.add(log("x", task_id=7))
    outbox.add(finished(7), final_of_task=7)  # seq 2
    outbox.add(log("y", task_id=8))
    outbox.add(finished(8), final_of_task=8)  # seq 4
    assert outbox.unacked_final_tasks() == {7, 8}
    outbox.ack(2)
    assert outbox.unacked_final_tasks() == {8}
    outbox.resume_after(4)
    assert outbox.unacked_final_tasks() == set()
