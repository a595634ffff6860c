"""Coverage reports of some sessions of one build: JSON (per file, function and test),
Cobertura XML and LCOV. The build is read a page of classes at a time and the report is
written as it goes, so its memory is the folded masks, not the build."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from xml.sax.saxutils import quoteattr

from testfleet.hub.coverage.folding import Folded
from testfleet.protocol.coverage_api import FileCoverage, FunctionCoverage, Totals
from testfleet.store import coverage_data
from testfleet.store.coverage_records import BuildRecord, ClassRecord, FunctionRecord
from testfleet.store.db import Store

Arc = tuple[int, int]

FORMATS = ("json", "cobertura", "lcov")
MEDIA_TYPES = {"json": "application/json", "cobertura": "application/xml", "lcov": "text/plain"}


def totals(covered: int, total: int) -> Totals:
    """Covered of total, with the percentage (100 for nothing to cover)."""
    percent = round(100.0 * covered / total, 2) if total else 100.0
    return Totals(covered=covered, total=total, percent=percent)


def lines_of(cls: ClassRecord, mask: int) -> tuple[list[int], list[int]]:
    """The covered and missing lines of a class under `mask`."""
    covered: list[int] = []
    missing: list[int] = []
    for position, line in enumerate(cls.lines):
        (covered if mask >> position & 1 else missing).append(line)
    return covered, missing


def branches_of(cls: ClassRecord, mask: int) -> tuple[list[Arc], list[Arc]]:
    """The executed and missing branch arcs of a class under `mask` (none unless measured)."""
    executed: list[Arc] = []
    missing: list[Arc] = []
    offset = len(cls.lines)
    for position, arc in enumerate(cls.arcs, offset):
        (executed if mask >> position & 1 else missing).append(arc)
    return executed, missing


def file_coverage(cls: ClassRecord, mask: int, functions: list[FunctionRecord]) -> FileCoverage:
    """One module of a report: its summary counts probes (lines, and branches if measured),
    as coverage.py's own total does."""
    covered, missing = lines_of(cls, mask)
    executed, unexecuted = branches_of(cls, mask)
    return FileCoverage(
        covered_lines=covered,
        missing_lines=missing,
        executed_branches=executed,
        missing_branches=unexecuted,
        summary=totals(len(covered) + len(executed), cls.probes),
        functions={
            fn.name: FunctionCoverage(
                line=fn.line,
                end_line=fn.end_line,
                **totals((mask & fn.mask()).bit_count(), fn.count).model_dump(),
            )
            for fn in functions
        },
    )


async def classes_of(
    store: Store, build_id: int
) -> AsyncIterator[tuple[ClassRecord, list[FunctionRecord]]]:
    """A build's classes with their functions, a page at a time."""
    after = -1
    while True:
        page = await store.read(coverage_data.class_page, build_id, after)
        if not page:
            return
        functions = await store.read(
            coverage_data.functions_of, build_id, page[0].idx, page[-1].idx
        )
        by_class: dict[int, list[FunctionRecord]] = {}
        for fn in functions:
            by_class.setdefault(fn.class_idx, []).append(fn)
        for cls in page:
            yield cls, by_class.get(cls.idx, [])
        after = page[-1].idx


async def json_report(
    store: Store, build: BuildRecord, sessions: list[str], folded: Folded, test: str | None
) -> AsyncIterator[str]:
    """The JSON report (`protocol.coverage_api.Report`), written file by file."""
    head = {"app": build.app, "build": build.version, "sessions": sessions, "test": test}
    yield json.dumps(head)[:-1] + ', "files": {'
    covered_total = probes_total = 0
    tests: dict[str, dict[str, list[int]]] = {}
    test_counts: dict[str, int] = {}
    first = True
    async for cls, functions in classes_of(store, build.id):
        mask = folded.classes.get(cls.idx, 0)
        report = file_coverage(cls, mask, functions)
        covered_total += report.summary.covered
        probes_total += report.summary.total
        yield ("" if first else ", ") + json.dumps(cls.name) + ": " + report.model_dump_json()
        first = False
        for name, by_class in folded.tests.items():
            test_mask = by_class.get(cls.idx, 0)
            if test_mask:
                covered, _ = lines_of(cls, test_mask)
                tests.setdefault(name, {})[cls.name] = covered
                test_counts[name] = test_counts.get(name, 0) + test_mask.bit_count()
    yield '}, "totals": ' + totals(covered_total, probes_total).model_dump_json()
    yield ', "tests": {'
    for number, (name, files) in enumerate(sorted(tests.items())):
        body = {"totals": totals(test_counts[name], probes_total).model_dump(), "files": files}
        yield ("" if number == 0 else ", ") + json.dumps(name) + ": " + json.dumps(body)
    yield "}}"


async def cobertura_report(
    store: Store, build: BuildRecord, folded: Folded, base: str
) -> AsyncIterator[str]:
    """Cobertura XML (as `coverage xml` writes it; packages are folders)."""
    packages: dict[str, list[str]] = {}
    package_counts: dict[str, list[int]] = {}
    covered_total = probes_total = branches_covered = branches_total = 0
    async for cls, functions in classes_of(store, build.id):
        mask = folded.classes.get(cls.idx, 0)
        covered, _ = lines_of(cls, mask)
        rate = _rate(len(covered), len(cls.lines))
        methods = []
        for fn in functions:
            fn_lines = "".join(
                f'<line number="{line}" hits="{mask >> p & 1}"/>'
                for p, line in enumerate(cls.lines[fn.first : fn.first + fn.count], fn.first)
            )
            fn_rate = _rate((mask & fn.mask()).bit_count(), fn.count)
            methods.append(
                f'<method name={quoteattr(fn.name)} signature="" line-rate="{fn_rate}" '
                f'branch-rate="0"><lines>{fn_lines}</lines></method>'
            )
        lines = "".join(
            f'<line number="{line}" hits="{mask >> p & 1}"/>' for p, line in enumerate(cls.lines)
        )
        package = str(PurePosixPath(cls.name).parent).replace("/", ".")
        packages.setdefault(package, []).append(
            f"<class name={quoteattr(PurePosixPath(cls.name).name)} "
            f'filename={quoteattr(cls.name)} complexity="0" line-rate="{rate}" '
            f'branch-rate="0"><methods>{"".join(methods)}</methods><lines>{lines}</lines></class>'
        )
        counts = package_counts.setdefault(package, [0, 0])
        counts[0] += len(covered)
        counts[1] += len(cls.lines)
        covered_total += len(covered)
        probes_total += len(cls.lines)
        executed, _ = branches_of(cls, mask)
        branches_covered += len(executed)
        branches_total += len(cls.arcs)
    yield '<?xml version="1.0" ?>\n'
    yield (
        f'<coverage version="testfleet" timestamp="{int(time.time() * 1000)}" '
        f'lines-valid="{probes_total}" lines-covered="{covered_total}" '
        f'line-rate="{_rate(covered_total, probes_total)}" '
        f'branches-covered="{branches_covered}" branches-valid="{branches_total}" '
        f'branch-rate="{_rate(branches_covered, branches_total)}" complexity="0">'
    )
    yield f"<sources><source>{_escape(base)}</source></sources><packages>"
    for package, classes in sorted(packages.items()):
        hits, total = package_counts[package]
        yield (
            f'<package name={quoteattr(package)} line-rate="{_rate(hits, total)}" '
            f'branch-rate="0" complexity="0"><classes>{"".join(classes)}</classes></package>'
        )
    yield "</packages></coverage>\n"


async def lcov_report(
    store: Store, build: BuildRecord, folded: Folded, test: str | None
) -> AsyncIterator[str]:
    """LCOV tracefile, one record per module."""
    async for cls, functions in classes_of(store, build.id):
        mask = folded.classes.get(cls.idx, 0)
        out = [f"TN:{test or ''}", f"SF:{cls.name}"]
        for fn in functions:
            out.append(f"FN:{fn.line},{fn.name}")
        for fn in functions:
            out.append(f"FNDA:{1 if mask & fn.mask() else 0},{fn.name}")
        out.append(f"FNF:{len(functions)}")
        out.append(f"FNH:{sum(1 for fn in functions if mask & fn.mask())}")
        hit = 0
        for position, line in enumerate(cls.lines):
            flag = mask >> position & 1
            hit += flag
            out.append(f"DA:{line},{flag}")
        executed, _ = branches_of(cls, mask)
        taken, ran = set(executed), {line for p, line in enumerate(cls.lines) if mask >> p & 1}
        for number, arc in enumerate(cls.arcs):
            taken_text = "1" if arc in taken else "0" if arc[0] in ran else "-"
            out.append(f"BRDA:{arc[0]},0,{number},{taken_text}")
        if cls.arcs:
            out += [f"BRF:{len(cls.arcs)}", f"BRH:{len(executed)}"]
        out += [f"LF:{len(cls.lines)}", f"LH:{hit}", "end_of_record"]
        yield "\n".join(out) + "\n"


def _rate(covered: int, total: int) -> str:
    return f"{covered / total:.4g}" if total else "1"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
