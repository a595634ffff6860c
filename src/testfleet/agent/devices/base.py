"""What a device provider is: it finds devices (starting their drivers where it must), says
when they come and go, and stops what it started."""

from __future__ import annotations

from collections.abc import Callable

from testfleet.protocol.wire import DeviceSpec

Report = Callable[[DeviceSpec | None, str | None], None]
"""`report(added, None)` when a device appears (or changes), `report(None, name)` when one
goes away."""


class ProviderError(Exception):
    """A provider cannot start: its options are wrong or what it needs is missing."""


class DeviceProvider:
    """Subclass with `start`, and `watch` for devices that come and go."""

    name = "provider"

    def __init__(self, options: str) -> None:
        """Read the provider's OPTIONS (after `NAME:`); ProviderError if they are wrong."""

    async def start(self) -> list[DeviceSpec]:
        """Find the devices there are now (starting drivers); ProviderError if it cannot."""
        raise NotImplementedError

    async def watch(self, report: Report) -> None:
        """Report devices as they come and go, until cancelled (default: they never do)."""

    async def close(self) -> None:
        """Stop whatever the provider started."""


def parse_options(text: str, provider: str, known: set[str]) -> dict[str, str]:
    """`k=v,k=v` as a dict; ProviderError naming an unknown or malformed option."""
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ProviderError(f"--provider {provider}: {part!r} is not KEY=VALUE")
        if key not in known:
            raise ProviderError(
                f"--provider {provider}: unknown option {key!r} (known: {', '.join(sorted(known))})"
            )
        options[key] = value
    return options


def positive_int(options: dict[str, str], key: str, default: int, provider: str) -> int:
    """An option that must be a positive integer."""
    value = options.get(key, str(default))
    if not value.isdigit() or int(value) < 1:
        raise ProviderError(f"--provider {provider}: {key}={value!r} must be a positive integer")
    return int(value)


def positive_float(options: dict[str, str], key: str, default: float, provider: str) -> float:
    """An option that must be a positive number."""
    value = options.get(key, str(default))
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number <= 0:
        raise ProviderError(f"--provider {provider}: {key}={value!r} must be a positive number")
    return number
