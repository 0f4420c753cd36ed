"""Scheduled e-mail reports: when a cron schedule next runs in the tenant's zone, and the alert digest it sends."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]  # croniter ships no type information

from tarifa_common.errors import InvalidInput
from tarifa_notifier.domain.alerts import Alert


class ReportFormat(StrEnum):
    TEXT = "text"
    CSV = "csv"


class ReportKind(StrEnum):
    ALERT_DIGEST = "alert_digest"  # the alerts of the period, by severity and object


@dataclass(frozen=True, slots=True)
class ReportSchedule:
    id: str
    tenant: str
    name: str
    cron: str
    time_zone: str
    recipients: tuple[str, ...]
    kind: ReportKind = ReportKind.ALERT_DIGEST
    format: ReportFormat = ReportFormat.TEXT

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise InvalidInput("cron", f"{self.cron!r} is not a cron expression (minute hour day month weekday)")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise InvalidInput("time_zone", f"{self.time_zone!r} is not an IANA time zone") from error
        if not self.recipients or any("@" not in r for r in self.recipients):
            raise InvalidInput("recipients", "give at least one e-mail address, each with an @")

    def next_run(self, after: datetime) -> datetime:
        """The first run strictly after `after`, evaluated in the schedule's zone, returned in UTC."""
        local = after.astimezone(ZoneInfo(self.time_zone))
        following: datetime = croniter(self.cron, local).get_next(datetime)
        return following.astimezone(UTC)


def alert_digest(schedule: ReportSchedule, alerts: Sequence[Alert], start: datetime, end: datetime) -> tuple[str, str]:
    """Subject and body: how many alerts fired in [start, end) by severity, then one line per alert."""
    period = [a for a in alerts if start <= a.starts_at < end]
    by_severity = Counter(a.severity.value for a in period)
    zone = ZoneInfo(schedule.time_zone)
    span = f"{start.astimezone(zone):%Y-%m-%d %H:%M} to {end.astimezone(zone):%Y-%m-%d %H:%M} ({schedule.time_zone})"
    subject = f"{schedule.name}: {len(period)} alert(s) from {span}"
    rows = sorted(period, key=lambda a: (a.starts_at, a.fingerprint))
    if schedule.format is ReportFormat.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["starts_at", "severity", "object_kind", "object_id", "status", "raised_count", "summary"])
        for a in rows:
            writer.writerow(
                [
                    a.starts_at.isoformat(),
                    a.severity.value,
                    a.object_kind,
                    a.object_id,
                    a.status.value,
                    a.raised_count,
                    a.summary,
                ]
            )
        return subject, out.getvalue()
    lines = [subject, ""]
    lines += [f"{severity}: {by_severity.get(severity, 0)}" for severity in ("urgent", "important", "standard")]
    lines.append("")
    lines += [
        f"{a.starts_at.astimezone(zone):%Y-%m-%d %H:%M} [{a.severity.value}] {a.object_kind} {a.object_id}: {a.summary}"
        for a in rows
    ]
    return subject, "\n".join(lines) + "\n"


DEFAULT_FIRST_PERIOD = timedelta(days=1)
