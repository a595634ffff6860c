"""Every integer a client can put in a path, a query or a header is bounded to what the store
holds (a class of bugs, checked as a class: a new route cannot forget it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testfleet.hub.app import create_app
from testfleet.hub.config import HubConfig
from testfleet.protocol.types import INT64_MAX


def integer_parameters(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                kinds = [parameter.get("schema", {})]
                kinds += parameter.get("schema", {}).get("anyOf", [])
                for kind in kinds:
                    if kind.get("type") == "integer":
                        found.append((f"{method.upper()} {path} {parameter['name']}", kind))
    return found


def test_every_integer_parameter_has_64_bit_bounds(tmp_path: Path) -> None:
    schema = create_app(HubConfig(data_dir=tmp_path)).openapi()
    parameters = integer_parameters(schema)
    assert len(parameters) > 10
    unbounded = [
        where
        for where, kind in parameters
        if kind.get("maximum", INT64_MAX + 1) > INT64_MAX
        or kind.get("minimum", -INT64_MAX - 2) < -INT64_MAX - 1
    ]
    assert unbounded == []
