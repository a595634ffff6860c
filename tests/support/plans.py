"""The example test plans (examples/plans), imported into a hub."""

from __future__ import annotations

from pathlib import Path

import httpx

from testfleet.steps.plan.archive import zip_directory

EXAMPLE_PLANS = Path(__file__).resolve().parents[2] / "examples" / "plans"


def import_example_plans(client: httpx.Client, *names: str) -> None:
    """POST each named example plan as a zip to /api/v1/plans; each must be created (201)."""
    for name in names:
        imported = client.post(
            "/api/v1/plans",
            content=zip_directory(EXAMPLE_PLANS / name),
            headers={"Content-Type": "application/zip"},
        )
        assert imported.status_code == 201, imported.text
