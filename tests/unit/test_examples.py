"""The example descriptors in examples/jobs are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from testfleet.hub.descriptors import check_descriptor, parse_body

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "jobs").iterdir())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_descriptor_is_valid(path: Path) -> None:
    media = "application/yaml" if path.suffix in (".yaml", ".yml") else "application/json"
    descriptor = check_descriptor(parse_body(path.read_bytes(), media))
    assert descriptor.tests


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"smoke.yaml", "parallel.yaml", "contest.json"}
