"""The W3C WebDriver side of the gateway: error bodies, and new-session capabilities processed
as the spec says (alwaysMatch merged into each firstMatch), with testfleet's `tf:` extension
capabilities read and checked.

Every problem is a `W3CError` whose message names where it is (a JSON pointer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

STATUS = {
    "invalid argument": 400,
    "invalid session id": 404,
    "unknown command": 404,
    "unknown method": 405,
    "session not created": 500,
    "unknown error": 500,
    "unsupported operation": 500,
}

STANDARD: dict[str, type | tuple[type, ...]] = {
    "browserName": str,
    "browserVersion": str,
    "platformName": str,
    "acceptInsecureCerts": bool,
    "pageLoadStrategy": str,
    "proxy": dict,
    "setWindowRect": bool,
    "timeouts": dict,
    "strictFileInteractability": bool,
    "unhandledPromptBehavior": (str, dict),
    "userAgent": str,
    "webSocketUrl": bool,
}
"""The W3C capabilities and their JSON types; any other must be an extension (`prefix:name`)."""

MAX_PRIORITY = 1000
TF_PREFIX = "tf:"


class W3CError(Exception):
    """An error answered in the W3C shape: `{"value": {"error", "message", "stacktrace"}}`."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message

    @property
    def status(self) -> int:
        """The HTTP status the spec gives this error."""
        return STATUS.get(self.error, 500)

    def body(self) -> bytes:
        """The JSON body."""
        return error_body(self.error, self.message)


def error_body(error: str, message: str) -> bytes:
    """A W3C error body."""
    value = {"error": error, "message": message, "stacktrace": ""}
    return json.dumps({"value": value}).encode()


@dataclass(frozen=True)
class Placement:
    """testfleet's `tf:` capabilities: where a session may go and how it waits."""

    labels: dict[str, str] = field(default_factory=dict)
    agent: str | None = None
    udids: tuple[str, ...] = ()
    least_used: bool = False
    priority: int = 0
    idle_timeout: float | None = None
    screenshot: bool = True


@dataclass(frozen=True)
class NewSession:
    """A checked new-session request: the candidate capability sets in order of preference
    (alwaysMatch merged into each firstMatch, `tf:` keys removed) and the placement."""

    candidates: list[dict[str, Any]]
    placement: Placement
    requested: dict[str, Any]
    """The client's `capabilities` object as sent (kept with the session)."""


def parse_new_session(body: bytes) -> NewSession:
    """Check a `POST /session` body; W3CError `invalid argument` naming where it is wrong."""
    try:
        document = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise W3CError("invalid argument", f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise W3CError("invalid argument", "/: the body must be a JSON object")
    capabilities = document.get("capabilities")
    if capabilities is None:
        hint = (
            " (desiredCapabilities is the legacy protocol)"
            if "desiredCapabilities" in (document)
            else ""
        )
        raise W3CError("invalid argument", f"/capabilities: required{hint}")
    if not isinstance(capabilities, dict):
        raise W3CError("invalid argument", "/capabilities: must be an object")
    always = capabilities.get("alwaysMatch", {})
    if not isinstance(always, dict):
        raise W3CError("invalid argument", "/capabilities/alwaysMatch: must be an object")
    _check(always, "/capabilities/alwaysMatch")
    first = capabilities.get("firstMatch", [{}])
    if not isinstance(first, list) or not first:
        raise W3CError(
            "invalid argument", "/capabilities/firstMatch: must be a non-empty array of objects"
        )
    candidates = []
    for index, entry in enumerate(first):
        where = f"/capabilities/firstMatch/{index}"
        if not isinstance(entry, dict):
            raise W3CError("invalid argument", f"{where}: must be an object")
        _check(entry, where)
        for key in entry:
            if key in always:
                raise W3CError(
                    "invalid argument", f"{where}/{_escape(key)}: also given in alwaysMatch"
                )
        candidates.append({**always, **entry})
    placements = {repr(_placement(c, always)) for c in candidates}
    if len(placements) > 1:
        raise W3CError(
            "invalid argument", "/capabilities/firstMatch: tf: capabilities belong in alwaysMatch"
        )
    placement = _placement(candidates[0], always)
    stripped = [{k: v for k, v in c.items() if not k.startswith(TF_PREFIX)} for c in candidates]
    return NewSession(candidates=stripped, placement=placement, requested=capabilities)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _check(capabilities: dict[str, Any], where: str) -> None:
    for key, value in capabilities.items():
        pointer = f"{where}/{_escape(key)}"
        expected = STANDARD.get(key)
        if expected is not None:
            if not isinstance(value, expected):
                raise W3CError("invalid argument", f"{pointer}: has the wrong type")
        elif ":" not in key:
            raise W3CError(
                "invalid argument",
                f"{pointer}: not a W3C capability; extension capabilities are 'prefix:name'",
            )
        elif value is None and key.startswith(TF_PREFIX):
            raise W3CError("invalid argument", f"{pointer}: must not be null")


def _placement(capabilities: dict[str, Any], always: dict[str, Any]) -> Placement:
    def at(key: str) -> str:
        return (
            "/capabilities/alwaysMatch/" if key in always else "/capabilities/firstMatch/*/"
        ) + key

    def get(name: str, kind: type | tuple[type, ...], describe: str) -> Any:
        value = capabilities.get(TF_PREFIX + name)
        if value is None:
            return None
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise W3CError("invalid argument", f"{at(TF_PREFIX + name)}: must be {describe}")
        return value

    known = {
        "labels",
        "agent",
        "udids",
        "leastUsed",
        "priority",
        "newCommandTimeout",
        "screenshot",
    }
    for key in capabilities:
        if key.startswith(TF_PREFIX) and key[len(TF_PREFIX) :] not in known:
            raise W3CError(
                "invalid argument",
                f"{at(key)}: unknown; testfleet knows tf:" + ", tf:".join(sorted(known)),
            )
    labels = get("labels", dict, "an object of strings") or {}
    if not all(isinstance(v, str) for v in labels.values()):
        raise W3CError("invalid argument", f"{at('tf:labels')}: values must be strings")
    udids = get("udids", list, "an array of strings") or []
    if not all(isinstance(u, str) for u in udids):
        raise W3CError("invalid argument", f"{at('tf:udids')}: must be an array of strings")
    priority = get("priority", int, "an integer") or 0
    if abs(priority) > MAX_PRIORITY:
        raise W3CError("invalid argument", f"{at('tf:priority')}: must be within ±{MAX_PRIORITY}")
    timeout = get("newCommandTimeout", (int, float), "a number of seconds")
    if timeout is None:
        timeout = capabilities.get("appium:newCommandTimeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float)
        ):
            raise W3CError(
                "invalid argument", f"{at('appium:newCommandTimeout')}: must be a number"
            )
    if timeout is not None and timeout <= 0:
        raise W3CError(
            "invalid argument", "/capabilities/alwaysMatch/tf:newCommandTimeout: must be positive"
        )
    return Placement(
        labels=labels,
        agent=get("agent", str, "a string"),
        udids=tuple(udids),
        least_used=bool(get("leastUsed", bool, "true or false")),
        priority=priority,
        idle_timeout=float(timeout) if timeout is not None else None,
        screenshot=get("screenshot", bool, "true or false") is not False,
    )
