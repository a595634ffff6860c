"""Test impact analysis: a build's risks (functions new or modified since its parent build,
by body checksum) and the parent build's tests that touched the modified functions."""

from __future__ import annotations

from dataclasses import dataclass

from testfleet.hub.coverage.folding import fold
from testfleet.hub.coverage.reports import classes_of
from testfleet.protocol.coverage_api import Risk, TestToRun
from testfleet.store import coverage as coverage_store
from testfleet.store.coverage_records import BuildRecord, FunctionRecord, SessionRecord
from testfleet.store.db import Store


@dataclass(frozen=True)
class Change:
    """A function of the new build that is new, or modified since the parent."""

    path: str
    function: FunctionRecord
    kind: str
    parent: FunctionRecord | None


async def _functions(store: Store, build: BuildRecord) -> dict[tuple[str, str], FunctionRecord]:
    found = {}
    async for cls, functions in classes_of(store, build.id):
        for fn in functions:
            found[(cls.name, fn.name)] = fn
    return found


async def changes(store: Store, build: BuildRecord, parent: BuildRecord) -> list[Change]:
    """What differs from `parent`, in file and line order."""
    before = await _functions(store, parent)
    found = []
    async for cls, functions in classes_of(store, build.id):
        for fn in functions:
            old = before.get((cls.name, fn.name))
            if old is None:
                found.append(Change(cls.name, fn, "new", None))
            elif old.checksum != fn.checksum:
                found.append(Change(cls.name, fn, "modified", old))
    return found


async def sessions_of(store: Store, build: BuildRecord) -> list[SessionRecord]:
    """A build's sessions that hold coverage (open or finished)."""
    return await store.read(
        coverage_store.list_sessions,
        build_id=build.id,
        states=("active", "stopping", "finished"),
        limit=100_000,
    )


async def risks(store: Store, build: BuildRecord, parent: BuildRecord | None) -> list[Risk]:
    """The build's new and modified functions, each with what its sessions covered of it."""
    if parent is None:
        return []
    found = await changes(store, build, parent)
    folded = await fold(store, await sessions_of(store, build))
    result = []
    for change in found:
        fn = change.function
        covered = (folded.classes.get(fn.class_idx, 0) & fn.mask()).bit_count()
        result.append(
            Risk(
                path=change.path,
                function=fn.name,
                kind="new" if change.kind == "new" else "modified",
                line=fn.line,
                covered=covered,
                total=fn.count,
                tested=covered > 0,
            )
        )
    return result


async def tests_to_run(
    store: Store, build: BuildRecord, parent: BuildRecord | None
) -> list[TestToRun]:
    """The parent build's tests that touched a function modified in `build`."""
    if parent is None:
        return []
    modified = [c for c in await changes(store, build, parent) if c.parent is not None]
    if not modified:
        return []
    sessions = await sessions_of(store, parent)
    test_types: dict[str, str] = {}
    touched: dict[str, list[str]] = {}
    for session in sessions:
        folded = await fold(store, [session], per_test=True)
        for test, by_class in folded.tests.items():
            if not test:
                continue
            for change in modified:
                old = change.parent
                assert old is not None
                if by_class.get(old.class_idx, 0) & old.mask():
                    label = f"{change.path}:{change.function.name}"
                    names = touched.setdefault(test, [])
                    if label not in names:
                        names.append(label)
                    test_types.setdefault(test, session.test_type)
    return [
        TestToRun(name=name, testType=test_types[name], functions=functions)
        for name, functions in sorted(touched.items())
    ]
