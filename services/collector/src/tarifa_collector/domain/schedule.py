"""Import schedules set like a cron entry (minute hour day-of-month month day-of-week), in the source's time zone.

Read with croniter, the field's library. One rule differs from cron: when both the day of the
month and the weekday are set, cron runs on either; the Summit CDR import ("monthly") means
the day of the month, so the weekday is then ignored.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped]

from tarifa_collector.domain.records import to_utc
from tarifa_common.errors import InvalidInput


def normalise(expression: str) -> str:
    """The expression as it will run (weekday dropped when a day of the month is set), or InvalidInput."""
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidInput(
            "schedule", f"{expression!r} has {len(fields)} fields; write minute hour day-of-month month day-of-week"
        )
    if fields[2] != "*" and fields[4] != "*":
        fields[4] = "*"
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised):
        raise InvalidInput("schedule", f"{expression!r} is not a valid schedule, e.g. '0 3 * * *' (daily at 03:00)")
    return normalised


def next_run(expression: str, after: datetime, zone: ZoneInfo) -> datetime:
    """The first time after `after` (aware) the schedule fires, in UTC; the schedule reads local time."""
    local = after.astimezone(zone).replace(tzinfo=None)
    fire: datetime = croniter(normalise(expression), local).get_next(datetime)
    return to_utc(fire, zone)
