"""The package's shape, checked: the parts import only what docs/architecture.md allows, no
module imports back into a cycle (TYPE_CHECKING imports count too), modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "testfleet"
MAX_LINES = 400

# What each part may import of testfleet (besides itself); `None`: anything.
ALLOWED: dict[str, set[str] | None] = {
    "protocol": set(),
    "store": {"protocol"},
    "steps": {"protocol"},
    "client": {"protocol"},
    "agent": {"protocol", "steps", "client"},
    "sdk": {"protocol", "client"},
    "probe": {"protocol", "client"},
    "hub": {"protocol", "store", "steps", "ui"},
    "ui": set(),
    "cli": None,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The testfleet modules `path` imports, at any depth (TYPE_CHECKING blocks included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("testfleet"))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("testfleet")
        ):
            assert node.module is not None
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imports_of(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def test_parts_import_only_what_they_may() -> None:
    problems = []
    for module, imported in graph().items():
        allowed = ALLOWED.get(part(module))
        if allowed is None:
            continue
        for target in imported:
            if part(target) not in allowed | {part(module), ""}:
                problems.append(f"{module} imports {target}")
    assert problems == []


def test_hub_has_no_import_cycle() -> None:
    edges = {m: {t for t in ts if t.startswith("testfleet.hub")} for m, ts in graph().items()}
    edges = {m: ts for m, ts in edges.items() if m.startswith("testfleet.hub")}
    # Importing a submodule imports its packages' __init__ first: not an edge of ours.
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if node.startswith(target + "."):
                continue
            if state.get(target) == 1:
                cycle.extend([*path, node, target])
                return True
            if state.get(target) is None and visit(target, [*path, node]):
                return True
        state[node] = 2
        return False

    for node in sorted(edges):
        if state.get(node) is None and visit(node, []):
            break
    assert cycle == []


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_modules_are_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines; split it by concern"
