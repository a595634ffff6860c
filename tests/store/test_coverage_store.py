"""The coverage store on SQLite and PostgreSQL: builds once, sessions and their refusals,
parts only for open sessions of their build, folding page by page, hits paged by key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from testfleet.hub.coverage.folding import finish, fold
from testfleet.protocol.coverage import AstClass, AstFunction
from testfleet.store import Store
from testfleet.store import coverage as cs
from testfleet.store import coverage_actions as ca
from testfleet.store import coverage_data as cd
from testfleet.store.coverage_codec import PartData, encode_part
from testfleet.store.coverage_records import BuildRecord, SessionRecord

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def classes(count: int, probes: int = 4) -> list[AstClass]:
    return [
        AstClass(
            id=n,
            name=f"m{n:03}.py",
            lines=list(range(1, probes + 1)),
            functions=[
                AstFunction(name="f", line=1, endLine=probes, first=0, count=probes, checksum="c")
            ],
        )
        for n in range(count)
    ]


async def add_build(
    store: Store, version: str = "1", count: int = 3, checksum: str = "x"
) -> BuildRecord:
    build = await store.write(
        cs.add_build,
        app="app",
        version=version,
        parent=None,
        checksum=checksum,
        classes=classes(count),
        now=NOW,
    )
    assert isinstance(build, BuildRecord)
    return build


async def new_session(
    store: Store, build: BuildRecord, session_id: str, **fields: object
) -> SessionRecord | cs.SessionRefused:
    values = {
        "test_type": "AUTO",
        "test_name": None,
        "is_realtime": False,
        "is_global": False,
        "agents": ["p1"],
        "scope": "app",
        "started_by": "me",
        "job_id": None,
        **fields,
    }
    return await store.write(
        cs.create_session, session_id=session_id, build=build, now=NOW, **values
    )  # type: ignore[arg-type]


def blob(entries: list[tuple[int, str, str]]) -> bytes:
    """A part's blob: (class index, test, probe bits, probe 0 first)."""
    tests = sorted({t for _, t, _ in entries})
    return encode_part(
        PartData(
            tests,
            [c for c, _, _ in entries],
            [tests.index(t) for _, t, _ in entries],
            [len(b) for _, _, b in entries],
            "".join(b for _, _, b in entries).encode(),
        )
    )


async def test_a_build_is_stored_once_and_other_code_under_its_name_is_a_conflict(
    store: Store,
) -> None:
    build = await add_build(store)
    again = await add_build(store)
    other = await store.write(
        cs.add_build, app="app", version="1", parent=None, checksum="y", classes=[], now=NOW
    )
    layout = await store.read(cd.class_layout, build.id)
    page = await store.read(cd.class_page, build.id, 0, 1)
    functions = await store.read(cd.functions_of, build.id, 1, 2)

    assert again == build and (build.classes, build.functions, build.probes) == (3, 3, 12)
    assert isinstance(other, cs.BuildConflict)
    assert layout == {"m000.py": (0, 0, 4), "m001.py": (1, 1, 4), "m002.py": (2, 2, 4)}
    assert [c.name for c in page] == ["m001.py"]
    assert [(f.class_idx, f.mask()) for f in functions] == [(1, 0b1111), (2, 0b1111)]


async def test_sessions_refuse_a_taken_id_and_a_second_global_session(store: Store) -> None:
    build = await add_build(store)
    first = await new_session(store, build, "g1", is_global=True)
    taken = await new_session(store, build, "g1")
    second = await new_session(store, build, "g2", is_global=True)
    await store.write(cs.set_session_state, "g1", "finished")
    after = await new_session(store, build, "g3", is_global=True)
    listed = await store.read(cs.list_sessions, app="app", states=("active",))

    assert isinstance(first, SessionRecord) and first.version == "1" and first.total == 12
    assert isinstance(taken, cs.SessionRefused) and taken.status == 409
    assert isinstance(second, cs.SessionRefused) and second.code == "global_session_active"
    assert isinstance(after, SessionRecord)
    assert [s.id for s in listed] == ["g3"]


async def test_parts_go_only_to_open_sessions_of_their_build_and_fold_exactly(store: Store) -> None:
    build = await add_build(store)
    other = await add_build(store, "2", checksum="z")
    session = await new_session(store, build, "s")
    assert isinstance(session, SessionRecord)
    first = blob([(0, "t1", "1100"), (1, "t1", "0001")])
    second = blob([(0, "t1", "0110"), (0, "t2", "0001")])
    outcomes = [
        await store.write(cd.add_part, "s", build.id, first, 2, NOW),
        await store.write(cd.add_part, "s", build.id, second, 2, NOW),
        await store.write(cd.add_part, "s", other.id, first, 2, NOW),
        await store.write(cd.add_part, "nope", build.id, first, 2, NOW),
    ]
    live = await fold(store, [session], per_test=True)
    covered = await finish(store, session, NOW)
    late = await store.write(cd.add_part, "s", build.id, first, 2, NOW)
    done = await store.read(cs.get_session, "s")
    assert done is not None
    stored = await fold(store, [done], per_test=True)
    only_t2 = await fold(store, [done], test="t2")

    assert outcomes == ["stored", "stored", "other_build", "unknown"]
    assert live.classes == {0: 0b1111, 1: 0b1000} and live.covered == 5
    assert covered == 5 and (done.state, done.covered) == ("finished", 5)
    assert late == "closed"
    assert stored.classes == live.classes and stored.tests == live.tests
    assert stored.tests["t1"] == {0: 0b0111, 1: 0b1000}
    assert only_t2.classes == {0: 0b1000}
    assert await store.read(cd.part_page, "s", 0) == []  # folded parts are gone


async def test_hits_are_paged_by_key_across_sessions(store: Store) -> None:
    build = await add_build(store, count=30)
    ids = []
    for number in range(3):
        session = await new_session(store, build, f"h{number}")
        assert isinstance(session, SessionRecord)
        ids.append(session.id)
        rows = [(c, t, (c + 1) << number) for c in range(30) for t in ("a", "b")]
        await store.write(cd.add_hits, session.id, rows)
    seen = []
    after = None
    while page := await store.read(cd.hit_page, ids, after, None, 7):
        seen += page
        after = page[-1][:3]

    assert len(seen) == 180 == len({row[:3] for row in seen})
    assert seen == sorted(seen)
    assert ("h2", 4, "b", 5 << 2) in seen


async def test_probes_connect_and_disconnect_per_instance(store: Store) -> None:
    build = await add_build(store)
    await store.write(
        cs.connect_probe,
        agent_id="p1",
        app="app",
        build_id=build.id,
        instance_id="i1",
        hub="hub-a",
        now=NOW,
    )
    await store.write(
        cs.connect_probe,
        agent_id="p1",
        app="app",
        build_id=build.id,
        instance_id="i2",
        hub="hub-b",
        now=NOW,
    )  # reconnected elsewhere
    await store.write(cs.disconnect_probe, "p1", "i1")  # the old socket's late goodbye
    kept = await store.read(cs.list_probes, app="app")
    await store.write(cs.forget_hub_probes, "hub-b")
    gone = await store.read(cs.list_probes)

    assert [(p.agent_id, p.instance_id, p.hub, p.version) for p in kept] == [
        ("p1", "i2", "hub-b", "1")
    ]
    assert gone == []


async def test_a_handed_over_action_is_claimed_once_and_only_by_its_hub(store: Store) -> None:
    action_id = await store.write(
        ca.add_action,
        hub="hub-b",
        target={"app": "shop"},
        action={"type": "STOP_ALL"},
        requested_by="me",
        now=NOW,
    )
    pending = await store.read(ca.pending_actions, "hub-b")
    wrong_hub = await store.write(ca.claim_action, action_id, "hub-a")
    first = await store.write(ca.claim_action, action_id, "hub-b")
    second = await store.write(ca.claim_action, action_id, "hub-b")
    await store.write(ca.end_action, action_id, "done", {"sessions": ["s1"]})
    ended = await store.read(ca.get_action, action_id)

    assert pending == [action_id]
    assert wrong_hub is None and second is None
    assert first is not None and first.action == {"type": "STOP_ALL"}
    assert ended is not None and (ended.state, ended.result) == ("done", {"sessions": ["s1"]})
    assert await store.read(ca.pending_actions, "hub-b") == []
