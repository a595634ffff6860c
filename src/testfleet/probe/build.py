"""The application's build as the probe announces it: each module a "class" whose probes are
its executable lines (as coverage.py counts them), each function a range of those probes with
a checksum of its body."""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import coverage
from coverage.python import PythonFileReporter

from testfleet.probe.meter import Arc, Executed
from testfleet.protocol.coverage import AstClass, AstFunction

SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        "node_modules",
        "__pycache__",
        "site-packages",
        "build",
        "dist",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)


def digest(data: bytes, size: int = 8) -> str:
    """A short hex digest."""
    return hashlib.blake2b(data, digest_size=size).hexdigest()


@dataclass
class Module:
    """One measured module: its probes and how to find a line's probe."""

    path: str
    cls: AstClass
    reporter: PythonFileReporter
    index: dict[int, int] = field(default_factory=dict)
    arc_index: dict[Arc, int] = field(default_factory=dict)
    single_exits: dict[int, int] = field(default_factory=dict)

    def probe_mask(self, ran: Executed) -> int:
        """The probes hit by what ran (as coverage.py recorded it), as a bit mask."""
        mask = 0
        index = self.index
        for line in self.reporter.translate_lines(ran.lines):
            position = index.get(line)
            if position is not None:
                mask |= 1 << position
        if ran.arcs and self.arc_index:
            for arc in self._branch_arcs(ran.arcs):
                position = self.arc_index.get(arc)
                if position is not None:
                    mask |= 1 << position
        return mask

    def _branch_arcs(self, raw: set[Arc]) -> set[Arc]:
        """Recorded arcs as coverage.py's analysis reads them (a line recorded as an arc to
        itself left by its only exit)."""
        arcs = set()
        for start, end in self.reporter.translate_arcs(raw):
            if start != end:
                arcs.add((start, end))
            elif start in self.single_exits:
                arcs.add((start, self.single_exits[start]))
        return self.reporter.translate_arcs(arcs)


@dataclass
class Build:
    """The modules of the application, by absolute path."""

    root: Path
    modules: dict[str, Module]
    checksum: str

    @property
    def classes(self) -> list[AstClass]:
        """Every module as an AstClass, in name order."""
        return [m.cls for m in sorted(self.modules.values(), key=lambda m: m.cls.name)]


def source_files(roots: Iterable[Path]) -> Iterator[Path]:
    """The .py files below `roots`, skipping virtual environments, caches and VCS folders."""
    for root in roots:
        if root.is_file():
            yield root
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
            for name in sorted(files):
                if name.endswith(".py"):
                    yield Path(folder) / name


def _function_nodes(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function in the module with its qualified name (Class.method, outer.inner)."""

    def walk(
        node: ast.AST, prefix: str
    ) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def analyze(path: Path, name: str, cov: coverage.Coverage, *, with_source: bool) -> Module | None:
    """The module at `path` as a class of the build; None if it is not Python we can parse."""
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        reporter = PythonFileReporter(str(path), cov)
        statements = sorted(reporter.lines())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, coverage.CoverageException):
        return None
    index = {line: i for i, line in enumerate(statements)}
    arcs: list[Arc] = []
    single_exits: dict[int, int] = {}
    if cov.get_option("run:branch"):
        arcs, single_exits = _branch_arcs(reporter)
    arc_index = {arc: len(statements) + i for i, arc in enumerate(arcs)}
    functions = []
    for qualname, node in _function_nodes(tree):
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = node.end_lineno or node.lineno
        body_start = node.body[0].lineno
        probes = [index[line] for line in statements if body_start <= line <= end]
        functions.append(
            AstFunction(
                name=qualname,
                line=start,
                endLine=end,
                first=probes[0] if probes else 0,
                count=len(probes),
                checksum=digest(ast.dump(node).encode()),
            )
        )
    cls = AstClass(
        id=int(digest(text.encode()), 16) >> 1,
        name=name,
        lines=statements,
        arcs=arcs,
        functions=functions,
        source=text if with_source else None,
    )
    return Module(str(path.resolve()), cls, reporter, index, arc_index, single_exits)


def _branch_arcs(reporter: PythonFileReporter) -> tuple[list[Arc], dict[int, int]]:
    """The module's possible branch arcs (arcs from lines with more than one exit, as
    coverage.py's reports count them), and each line's only exit where it has one."""
    possible = reporter.arcs()
    exits: dict[int, set[int]] = {}
    for start, end in possible:
        exits.setdefault(start, set()).add(end)
    branch_lines = {line for line, count in reporter.exit_counts().items() if count > 1}
    no_branch = reporter.no_branch_lines()
    excluded = reporter.excluded_lines()
    arcs = sorted(
        arc
        for arc in possible
        if arc[0] in branch_lines and arc[0] not in no_branch and arc[1] not in excluded
    )
    single = {start: next(iter(ends)) for start, ends in exits.items() if len(ends) == 1}
    return arcs, single


def scan(
    roots: Iterable[Path],
    base: Path,
    cov: coverage.Coverage,
    *,
    omit: Iterable[Path] = (),
    with_source: bool = True,
) -> Build:
    """Analyze every module below `roots`; class names are paths relative to `base`."""
    skipped = [p.resolve() for p in omit]
    modules: dict[str, Module] = {}
    for path in source_files(roots):
        resolved = path.resolve()
        if any(resolved.is_relative_to(s) for s in skipped):
            continue
        try:
            name = resolved.relative_to(base.resolve()).as_posix()
        except ValueError:
            name = resolved.as_posix()
        module = analyze(resolved, name, cov, with_source=with_source)
        if module is not None:
            modules[module.path] = module
    summary = "\n".join(f"{m.cls.name}:{m.cls.id}" for m in modules.values())
    return Build(base, modules, digest(summary.encode(), 16))
