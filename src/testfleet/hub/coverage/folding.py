"""Sessions' data folded into bit masks, a page at a time: per class (union of tests) and,
when asked, per test. Memory is one mask per touched (class, test), never the parts or rows
themselves: finishing a session with 100,000 functions stays small (Drill4J's admin ran out
of memory exactly there, loading a session's data whole)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from testfleet.store import coverage_data
from testfleet.store.coverage_records import SessionRecord
from testfleet.store.db import Store

HIT_ROWS_PER_WRITE = 5000


@dataclass
class Folded:
    """Covered probes of some sessions: per class, and per test when asked for."""

    classes: dict[int, int] = field(default_factory=dict)
    tests: dict[str, dict[int, int]] = field(default_factory=dict)
    per_test: bool = False
    test: str | None = None

    def add(self, idx: int, test: str, mask: int) -> None:
        """Fold one (class, test) mask in."""
        if self.test is not None and test != self.test:
            return
        self.classes[idx] = self.classes.get(idx, 0) | mask
        if self.per_test:
            by_class = self.tests.setdefault(test, {})
            by_class[idx] = by_class.get(idx, 0) | mask

    @property
    def covered(self) -> int:
        """How many probes are covered."""
        return sum(mask.bit_count() for mask in self.classes.values())


async def fold(
    store: Store,
    sessions: Iterable[SessionRecord],
    *,
    per_test: bool = False,
    test: str | None = None,
) -> Folded:
    """The coverage of `sessions` (open ones from their parts, finished ones from their
    masks), optionally of one test only."""
    folded = Folded(per_test=per_test, test=test)
    finished: list[str] = []
    for session in sessions:
        if session.open:
            after = 0
            while True:
                after, entries = await store.read(coverage_data.decoded_page, session.id, after)
                if not entries:
                    break
                for idx, name, mask in entries:
                    folded.add(idx, name, mask)
        elif session.state == "finished":
            finished.append(session.id)
    await _fold_hits(store, finished, folded, test)
    return folded


async def _fold_hits(
    store: Store, session_ids: Sequence[str], folded: Folded, test: str | None
) -> None:
    if not session_ids:
        return
    after: tuple[str, int, str] | None = None
    while True:
        rows = await store.read(coverage_data.hit_page, session_ids, after, test)
        if not rows:
            return
        for session_id, idx, name, mask in rows:
            folded.add(idx, name, mask)
            after = (session_id, idx, name)


async def finish(store: Store, session: SessionRecord, now: datetime) -> int:
    """Fold an open session's parts into its per-(class, test) masks, store them and close
    the session; returns its covered probe count. Running it again after a crash redoes it."""
    masks: dict[tuple[int, str], int] = {}
    after = 0
    while True:
        after, entries = await store.read(coverage_data.decoded_page, session.id, after)
        if not entries:
            break
        for idx, name, mask in entries:
            key = (idx, name)
            masks[key] = masks.get(key, 0) | mask
    union: dict[int, int] = {}
    for (idx, _), mask in masks.items():
        union[idx] = union.get(idx, 0) | mask
    covered = sum(mask.bit_count() for mask in union.values())
    await store.write(coverage_data.clear_hits, session.id)
    rows = [(idx, name, mask) for (idx, name), mask in masks.items()]
    masks.clear()
    for start in range(0, len(rows), HIT_ROWS_PER_WRITE):
        await store.write(
            coverage_data.add_hits, session.id, rows[start : start + HIT_ROWS_PER_WRITE]
        )
    await store.write(coverage_data.finish_session, session.id, "finished", covered, now)
    return covered
