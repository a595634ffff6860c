"""What both clients share: URL checks, default headers, timeouts and pacing constants."""

from __future__ import annotations

import httpx

from testfleet.protocol.version import API_VERSION, API_VERSION_HEADER, REQUESTOR_HEADER

DEFAULT_HUB = "http://127.0.0.1:8470"
DEFAULT_TIMEOUT = 30.0

FOLLOW_READ_TIMEOUT = 60.0
"""A quiet event stream is reopened after this long; reopening proves the hub is alive."""

FOLLOW_RETRIES = 5
"""How many times in a row a broken event stream is reopened before giving up."""

PAGE_SIZE = 100


def check_url(base_url: str) -> str:
    """The hub URL without a trailing slash; ValueError unless it is http(s)://host[...]."""
    url = httpx.URL(base_url.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"the hub URL must look like http://host:port, got {base_url!r}")
    return str(url).rstrip("/")


def headers(token: str | None, requestor: str | None) -> dict[str, str]:
    """The headers sent on every request."""
    result = {API_VERSION_HEADER: str(API_VERSION), "Accept": "application/json"}
    if token:
        result["Authorization"] = f"Bearer {token}"
    if requestor:
        result[REQUESTOR_HEADER] = requestor
    return result


def follow_timeout(timeout: float) -> httpx.Timeout:
    """Connect as usual, but let the stream stay quiet for a while."""
    return httpx.Timeout(timeout, read=max(timeout, FOLLOW_READ_TIMEOUT))


def backoff(failures: int) -> float:
    """Seconds to wait before reopening a stream after `failures` failures in a row."""
    return float(min(0.25 * 2**failures, 5.0))


def poll_interval(elapsed: float, maximum: float) -> float:
    """Poll fast at first, then every `maximum` seconds."""
    return min(maximum, 0.1 + elapsed / 4)
