"""The probe's view of the application: modules as classes, executable lines as probes (as
coverage.py counts them), functions as probe ranges with checksums of their bodies."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import coverage
import pytest

from testfleet.probe.build import Build, scan, source_files
from testfleet.probe.meter import Executed, Meter
from testfleet.probe.sessions import Sessions, id_of_test, probes_of
from testfleet.protocol.coverage import MAX_PART_OBJECTS, StartSessionPayload

MODULE = textwrap.dedent(
    '''\
    """Doc."""
    import os


    def outer(x):
        """Docstring."""
        def inner(y):
            return y + 1
        return inner(x)


    class Cart:
        @staticmethod
        def add(a, b):
            if a:
                return a + b
            return b

    VALUE = outer(1)
    '''
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_probes_are_coverage_pys_statements_and_functions_are_ranges(tmp_path: Path) -> None:
    path = write(tmp_path, "app/mod.py", MODULE)
    build = scan([tmp_path / "app"], tmp_path, coverage.Coverage(data_file=None))
    cls = build.modules[str(path.resolve())].cls
    expected = coverage.Coverage(data_file=None).analysis2(str(path))[1]

    assert cls.name == "app/mod.py"
    assert cls.lines == expected
    functions = {f.name: f for f in cls.functions}
    assert list(functions) == ["outer", "outer.inner", "Cart.add"]
    add = functions["Cart.add"]
    assert add.line == 13 and add.endLine == 17
    assert [cls.lines[i] for i in range(add.first, add.first + add.count)] == [15, 16, 17]
    inner = functions["outer.inner"]
    assert [cls.lines[i] for i in range(inner.first, inner.first + inner.count)] == [8]
    assert cls.source == MODULE


def test_a_checksum_follows_the_body_not_the_place(tmp_path: Path) -> None:
    write(tmp_path / "v1", "m.py", "def f(a):\n    return a * 2\n\ndef g():\n    return 1\n")
    write(
        tmp_path / "v2",
        "m.py",
        "\n\n# moved\ndef f(a):\n    return a * 2\n\ndef g():\n    return 2\n",
    )
    cov = coverage.Coverage(data_file=None)
    one = {
        f.name: f.checksum
        for f in scan([tmp_path / "v1"], tmp_path / "v1", cov).classes[0].functions
    }
    two = {
        f.name: f.checksum
        for f in scan([tmp_path / "v2"], tmp_path / "v2", cov).classes[0].functions
    }

    assert one["f"] == two["f"]
    assert one["g"] != two["g"]


def test_the_build_skips_virtualenvs_caches_and_unparsable_files(tmp_path: Path) -> None:
    write(tmp_path, "pkg/a.py", "A = 1\n")
    write(tmp_path, ".venv/lib/x.py", "X = 1\n")
    write(tmp_path, "pkg/__pycache__/c.py", "C = 1\n")
    write(tmp_path, "pkg/broken.py", "def (:\n")
    write(tmp_path, "omitted/o.py", "O = 1\n")
    files = [p.relative_to(tmp_path).as_posix() for p in source_files([tmp_path])]
    build = scan(
        [tmp_path], tmp_path, coverage.Coverage(data_file=None), omit=[tmp_path / "omitted"]
    )

    assert files == ["omitted/o.py", "pkg/a.py", "pkg/broken.py"]
    assert [c.name for c in build.classes] == ["pkg/a.py"]


def test_the_build_checksum_changes_with_the_code_only(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "A = 1\n")
    cov = coverage.Coverage(data_file=None)
    first = scan([tmp_path], tmp_path, cov).checksum
    again = scan([tmp_path], tmp_path, cov).checksum
    write(tmp_path, "a.py", "A = 2\n")
    changed = scan([tmp_path], tmp_path, cov).checksum

    assert first == again != changed


@pytest.mark.parametrize("mask,count", [(0, 3), (0b101, 3), (1 << 69, 70), (0b1, 1)])
def test_probe_arrays_are_bit_masks_probe_0_first(mask: int, count: int) -> None:
    probes = probes_of(mask, count)
    assert len(probes) == count
    assert sum(1 << i for i, hit in enumerate(probes) if hit) == mask


def test_sessions_collect_per_test_and_split_parts_at_65535(tmp_path: Path) -> None:
    write(tmp_path, "one.py", "X = 1\n")
    one = next(iter(scan([tmp_path], tmp_path, coverage.Coverage(data_file=None)).modules.values()))
    modules = {
        f"/app/f{n}.py": replace(
            one, path=f"/app/f{n}.py", cls=one.cls.model_copy(update={"name": f"f{n}.py"})
        )
        for n in range(MAX_PART_OBJECTS + 5)
    }
    build = Build(tmp_path, modules, "x")
    sessions = Sessions(build)
    session = sessions.start(StartSessionPayload(sessionId="s", testName="named"))
    hits = {path: {"": Executed({1})} for path in build.modules}
    first = next(iter(build.modules))
    hits[first] = {"": Executed({1}), "t2": Executed({1})}
    sessions.add(hits)
    parts = sessions.parts(session)
    again = sessions.parts(session)

    assert [len(p.data) for p in parts] == [MAX_PART_OBJECTS, 6]
    assert session.probe_count == MAX_PART_OBJECTS + 5
    assert {d.testName for p in parts for d in p.data} == {"named", "t2"}
    assert all(d.testId == id_of_test(d.testName) for p in parts for d in p.data)
    assert again == []  # only what changed since the last part


BRANCHY = textwrap.dedent(
    """\
    def pick(x):
        if x > 1:
            return "big"
        for i in range(x):
            if i:
                break
        return "small"
    """
)


def test_with_branches_the_probes_add_coverage_pys_branch_arcs(tmp_path: Path) -> None:
    path = write(tmp_path, "b.py", BRANCHY)
    meter = Meter([tmp_path], branch=True)
    build = scan([tmp_path], tmp_path, meter.cov)
    module = build.modules[str(path.resolve())]
    meter.start()
    try:
        namespace: dict[str, object] = {}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        namespace["pick"](0)  # type: ignore[operator]
        hits = meter.collect()
    finally:
        meter.stop()
    reference = coverage.Coverage(data_file=None, branch=True)
    reference.start()
    try:
        namespace = {}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
        namespace["pick"](0)  # type: ignore[operator]
    finally:
        reference.stop()
    analysis = reference._analyze(str(path))
    ran = sorted((a, b) for a, ends in analysis.executed_branch_arcs().items() for b in ends)
    missed = sorted((a, b) for a, ends in analysis.missing_branch_arcs().items() for b in ends)
    mask = module.probe_mask(hits[str(path.resolve())][""])
    lines = len(module.cls.lines)
    executed = [arc for i, arc in enumerate(module.cls.arcs) if mask >> (lines + i) & 1]

    assert module.cls.arcs == sorted(ran + missed) and ran and missed
    assert executed == ran
