"""When to reopen a broken event stream, and when to give up (shared by both clients)."""

from __future__ import annotations

import httpx

from testfleet.client import responses, settings
from testfleet.client.errors import HubUnreachable


class Reconnect:
    """Counts failed stream attempts in a row; raises `HubUnreachable` when there are too many.

    A refused first connection fails at once (the hub is down or the URL is wrong). A stream that
    was only quiet for `FOLLOW_READ_TIMEOUT` is reopened at once and does not count.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.failures = 0
        self.connected = False
        self.ever_connected = False

    def attempt(self) -> None:
        """A new attempt begins."""
        self.connected = False

    def opened(self) -> None:
        """The hub answered with the stream's headers."""
        self.connected = self.ever_connected = True

    def received(self) -> None:
        """Events arrived: the stream works."""
        self.failures = 0

    def closed_early(self) -> float:
        """The hub closed the stream before the end event; return the delay before retrying."""
        return self._failed("the hub keeps closing the event stream before the job ends")

    def broken(self, error: httpx.TransportError) -> float:
        """The attempt failed with `error`; return the delay before retrying (or raise)."""
        if isinstance(error, httpx.ReadTimeout) and self.connected:
            return 0.0
        if not self.ever_connected:
            raise responses.unreachable(self.base_url, error) from None
        return self._failed(str(responses.unreachable(self.base_url, error).reason))

    def _failed(self, reason: str) -> float:
        self.failures += 1
        if self.failures > settings.FOLLOW_RETRIES:
            raise HubUnreachable(self.base_url, reason)
        return settings.backoff(self.failures)
