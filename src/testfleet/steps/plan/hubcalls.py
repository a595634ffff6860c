"""What the `plan` step asks of the hub over HTTP: a source archive, instance reports, the
outputs. Each call is tried again on a connection problem or a 5xx, for a bounded time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

ATTEMPTS = 6
FIRST_WAIT = 0.2


class HubCallError(Exception):
    """The hub refused the call, or could not be reached in time."""


class HubCalls:
    """An HTTP client of the hub with the agent's token."""

    def __init__(self, hub_url: str, token: str | None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=hub_url.rstrip("/"), headers=headers, timeout=timeout
        )

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        wait = FIRST_WAIT
        for attempt in range(ATTEMPTS):
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 500:
                    if response.is_error:
                        raise HubCallError(
                            f"{method} {path}: {response.status_code} {response.text[:500]}"
                        )
                    return response
                problem = f"{response.status_code} {response.text[:200]}"
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(wait)
                wait *= 2
        raise HubCallError(f"{method} {path}: {problem}")

    async def download(self, content_hash: str) -> bytes:
        """A source archive by its content hash."""
        return (await self._call("GET", f"/api/v1/plan-sources/{content_hash}")).content

    async def report(self, run_id: str, agent: str, reports: Sequence[dict[str, Any]]) -> None:
        """Instance reports of a run, by the agent they run on."""
        body = {"agent": agent, "reports": list(reports)}
        await self._call("POST", f"/api/v1/plan-runs/{run_id}/instances", json=body)

    async def upload_outputs(self, run_id: str, part: str, data: bytes) -> None:
        """This agent's share of the outputs (a tar.gz)."""
        await self._call(
            "PUT",
            f"/api/v1/plan-runs/{run_id}/outputs/{part}",
            content=data,
            headers={"Content-Type": "application/gzip"},
        )


class Reporter:
    """Sends instance reports in batches (at most every `interval` seconds) in order."""

    def __init__(self, hub: HubCalls, run_id: str, agent: str, interval: float = 0.25) -> None:
        self._hub = hub
        self._run_id = run_id
        self._agent = agent
        self._interval = interval
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._closing = False
        self.failures: list[str] = []

    def add(
        self, seq: int, state: str, exit_code: int | None = None, error: str | None = None
    ) -> None:
        """Queue a report."""
        self._pending.append({"seq": seq, "state": state, "exit_code": exit_code, "error": error})
        self._wake.set()
        if self._loop is None:
            self._loop = asyncio.create_task(self._send_forever())

    async def _send_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._send()
            if self._closing:
                if not self._pending:
                    return
            else:
                await asyncio.sleep(self._interval)

    async def _send(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                await self._hub.report(self._run_id, self._agent, batch)
            except HubCallError as error:
                self.failures.append(str(error))

    async def close(self) -> None:
        """Send what is queued and stop."""
        self._closing = True
        if self._loop is None:
            await self._send()
            return
        self._wake.set()
        await self._loop
