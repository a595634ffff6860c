"""Developer mode on the agent: the screen of a paused task's browser device.

A step on a browser device drives the device's own WebDriver endpoint (TESTFLEET_WEBDRIVER_URL),
so the hub's gateway does not know its session: the agent asks the endpoint for its live
sessions (`GET /sessions`, which ChromeDriver answers) and takes the newest one's screenshot.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from testfleet.agent.outbox import Outbox
from testfleet.protocol.wire import DevScreenshotTaken
from testfleet.protocol.wire_dev import DevScreenshot

TIMEOUT = 10.0
MAX_BASE64 = 3_000_000
"""The largest screenshot sent (base64 characters)."""


class Screens:
    """Answers DEV_SCREENSHOT for the tasks of one executor."""

    def __init__(
        self,
        outbox: Outbox,
        task_devices: dict[int, str],
        device_url: Callable[[str], str | None],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._outbox = outbox
        self._task_devices = task_devices
        self._device_url = device_url
        self._transport = transport

    async def take(self, message: DevScreenshot) -> None:
        """Report the screenshot (or why there is none) as DEV_SCREENSHOT_TAKEN."""
        image, error = None, None
        device = self._task_devices.get(message.task_id)
        url = self._device_url(device) if device is not None else None
        if device is None:
            error = "the task is not running on this agent"
        elif url is None:
            error = f"device {device} has no WebDriver endpoint (not a browser or phone)"
        else:
            image, error = await self._screenshot(url.rstrip("/"))
        self._outbox.add(
            DevScreenshotTaken(
                seq=1,
                task_id=message.task_id,
                request_id=message.request_id,
                png_base64=image,
                error=error[:2000] if error else None,
            )
        )

    async def _screenshot(self, base: str) -> tuple[str | None, str | None]:
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, transport=self._transport) as client:
                listed = (await client.get(f"{base}/sessions")).json().get("value")
                if not isinstance(listed, list) or not listed:
                    return None, "the device has no live WebDriver session"
                session_id = listed[-1].get("id")
                shot = await client.get(f"{base}/session/{session_id}/screenshot")
                value = shot.json().get("value")
        except (httpx.HTTPError, ValueError, AttributeError) as error:
            return None, f"the device's WebDriver endpoint did not give a screenshot: {error}"
        if shot.status_code != 200 or not isinstance(value, str):
            return None, f"the device's WebDriver endpoint answered {shot.status_code}"
        if len(value) > MAX_BASE64:
            return None, f"the screenshot is larger than {MAX_BASE64} characters"
        return value, None
