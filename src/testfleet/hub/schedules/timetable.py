"""Cron expressions in a time zone (croniter does the cron; zoneinfo the zones)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


class TimetableError(ValueError):
    """A cron expression or time zone that cannot be used; `field` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Timetable:
    """When a schedule fires: a five-field cron expression read in a time zone."""

    def __init__(self, cron: str, timezone: str) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise TimetableError(
                "timezone", f"{timezone!r} is not a time zone (use an IANA name: Europe/Berlin)"
            ) from None
        fields = cron.split()
        if len(fields) != 5 or not croniter.is_valid(cron):
            raise TimetableError(
                "cron",
                f"{cron!r} is not a cron expression: five fields, minute hour day month "
                "weekday ('0 2 * * *' is 02:00 every day)",
            )
        self.cron = cron

    def next_after(self, moment: datetime) -> datetime:
        """The first fire strictly after `moment`, in UTC."""
        local = moment.astimezone(self.zone)
        fire: datetime = croniter(self.cron, local).get_next(datetime)
        return fire.astimezone(UTC)

    def upcoming(self, after: datetime, count: int = 5) -> list[datetime]:
        """The next `count` fires after `after`, in UTC."""
        fires: list[datetime] = []
        moment = after
        for _ in range(count):
            moment = self.next_after(moment)
            fires.append(moment)
        return fires
