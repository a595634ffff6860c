"""Schemathesis over the hub's OpenAPI, with an admin token: every phase (examples, coverage,
fuzzing, stateful), a fixed seed and few examples so that the suite stays short; no answer
may be a server error, and the hub still answers /healthz after.

The long run (see docs/security.md) is the same command with --max-examples 1000 and no seed.
No agent is connected: fuzzed jobs queue and run nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Hub

pytestmark = pytest.mark.integration
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
ROOT = Path(__file__).resolve().parents[2]
HOOKS = {"SCHEMATHESIS_HOOKS": "tests.support.fuzz_hooks", "PYTHONPATH": str(ROOT)}
"""Bodies for media types schemathesis cannot make by itself (plan archives)."""


def fuzz_command(url: str, token: str, examples: int, seed: int | None) -> list[str]:
    """The schemathesis run the suite (and the long run) uses."""
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(examples),
        # Revoking tokens by id would revoke the fuzzer's own: tested on its own elsewhere.
        "--exclude-name",
        "DELETE /api/v1/tokens/{token_id}",
        "--request-timeout",
        "10",
    ]
    return [*command, "--seed", str(seed)] if seed is not None else command


def test_the_fuzzer_finds_no_server_error(tmp_path: Path) -> None:
    hub = Hub(tmp_path, auth=True)
    token = hub.create_token("fuzzer", "admin")
    hub.start()
    try:
        result = subprocess.run(
            fuzz_command(hub.url, token, examples=8, seed=42),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
            cwd=ROOT,
            env={**os.environ, **HOOKS},
        )
        assert result.returncode == 0, result.stdout[-5000:]
        assert "passed" in result.stdout
        assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200
    finally:
        hub.stop()
