"""Scheduled e-mail reports: when a cron schedule runs in its zone, the period it covers, and how each kind reads."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]  # croniter ships no type information

from tarifa_common.errors import InvalidInput
from tarifa_notifier.domain.alerts import Alert

DEFAULT_FIRST_PERIOD = timedelta(days=1)


class ReportFormat(StrEnum):
    TEXT = "text"  # the table in the e-mail body only
    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"


class ReportKind(StrEnum):
    ALERT_DIGEST = "alert_digest"  # the alerts since the previous run, by severity and object
    CALLS_BY_COST_CENTRE = "calls_by_cost_centre"  # the rater's rated calls of the previous local day
    INVOICING = "invoicing"  # the invoicer's invoices and credit notes of the previous month


# What each kind can be sent as: the body table always, plus the file its source offers.
FORMATS: dict[ReportKind, tuple[ReportFormat, ...]] = {
    ReportKind.ALERT_DIGEST: (ReportFormat.TEXT, ReportFormat.CSV),  # csv: the body is the CSV
    ReportKind.CALLS_BY_COST_CENTRE: (ReportFormat.TEXT, ReportFormat.CSV, ReportFormat.XLSX),  # the rater's exports
    ReportKind.INVOICING: (ReportFormat.TEXT, ReportFormat.XLSX, ReportFormat.PDF),  # the invoicer's report
}


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
        if self.format not in FORMATS[self.kind]:
            allowed = ", ".join(f.value for f in FORMATS[self.kind])
            raise InvalidInput("format", f"a {self.kind.value} report is sent as one of {allowed}")

    def next_run(self, after: datetime) -> datetime:
        """The first run strictly after `after`, evaluated in the schedule's zone, returned in UTC."""
        local = after.astimezone(ZoneInfo(self.time_zone))
        following: datetime = croniter(self.cron, local).get_next(datetime)
        return following.astimezone(UTC)

    def period(self, due_at: datetime, last_run: datetime | None) -> tuple[datetime, datetime]:
        """The [start, end) a run due at `due_at` covers, in UTC.

        Alerts: since the previous run (a day for the first), so a digest never skips an alert.
        Calls: the whole local day before the due date ("yesterday's calls", whatever the run's
        hour). Invoicing: the local month before the due date's month ("last month's invoicing").
        """
        if self.kind is ReportKind.ALERT_DIGEST:
            return last_run or due_at - DEFAULT_FIRST_PERIOD, due_at
        zone = ZoneInfo(self.time_zone)
        today = due_at.astimezone(zone).date()
        if self.kind is ReportKind.CALLS_BY_COST_CENTRE:
            first, last = today - timedelta(days=1), today
        else:
            last = today.replace(day=1)
            first = (last - timedelta(days=1)).replace(day=1)
        return _midnight(first, zone), _midnight(last, zone)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def span_of(schedule: ReportSchedule, start: datetime, end: datetime) -> str:
    zone = ZoneInfo(schedule.time_zone)
    return f"{start.astimezone(zone):%Y-%m-%d %H:%M} to {end.astimezone(zone):%Y-%m-%d %H:%M} ({schedule.time_zone})"


def alert_digest(schedule: ReportSchedule, alerts: Sequence[Alert], start: datetime, end: datetime) -> tuple[str, str]:
    """Subject and body: how many alerts fired in [start, end) by severity, then one line per alert."""
    period = [a for a in alerts if start <= a.starts_at < end]
    by_severity = Counter(a.severity.value for a in period)
    zone = ZoneInfo(schedule.time_zone)
    subject = f"{schedule.name}: {len(period)} alert(s) from {span_of(schedule, start, end)}"
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


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a report, as its source produced it."""

    filename: str
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Report:
    """A report ready to e-mail: subject, body (a table), and the source's file when the format asks for one."""

    subject: str
    body: str
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class CostCentreTotal:
    """The rater's total of one cost centre in one currency (amount rounded once, by the rater)."""

    cost_centre: str
    currency: str
    calls: int
    billable_seconds: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    """One invoice or credit note as the invoicer lists it (amounts positive; `kind` says which)."""

    number: str
    kind: str
    customer_id: str
    issue_date: date
    currency: str
    net: Decimal
    tax: Decimal
    total: Decimal

    @property
    def sign(self) -> int:
        return -1 if self.kind == "credit_note" else 1


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()) -> list[str]:
    """A fixed-width text table (e-mail clients show plain text in any font; columns line up in monospace)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def calls_by_cost_centre(
    schedule: ReportSchedule, totals: Sequence[CostCentreTotal], start: datetime, end: datetime
) -> tuple[str, str]:
    """Subject and body: one row per cost centre and currency, then the total per currency."""
    day = start.astimezone(ZoneInfo(schedule.time_zone)).date()
    calls = sum(t.calls for t in totals)
    subject = f"{schedule.name}: {calls} call(s) on {day:%Y-%m-%d} by cost centre"
    rows = [
        [t.cost_centre or "(no cost centre)", t.currency, str(t.calls), duration(t.billable_seconds), f"{t.amount}"]
        for t in sorted(totals, key=lambda t: (t.currency, t.cost_centre))
    ]
    for currency in sorted({t.currency for t in totals}):
        of = [t for t in totals if t.currency == currency]
        total = sum((t.amount for t in of), Decimal(0))
        rows.append(
            [
                "TOTAL",
                currency,
                str(sum(t.calls for t in of)),
                duration(sum(t.billable_seconds for t in of)),
                f"{total}",
            ]
        )
    lines = [f"Rated calls from {span_of(schedule, start, end)}.", ""]
    if rows:
        lines += table(["cost centre", "currency", "calls", "duration", "amount"], rows, frozenset({2, 3, 4}))
    else:
        lines.append("No rated calls in this period.")
    return subject, "\n".join(lines) + "\n"


def invoicing(schedule: ReportSchedule, invoices: Sequence[InvoiceSummary], month: str) -> tuple[str, str]:
    """Subject and body: every invoice and credit note of the month (credit notes negative), totals per currency."""
    issued = sum(1 for i in invoices if i.sign > 0)
    credited = len(invoices) - issued
    subject = f"{schedule.name}: {issued} invoice(s), {credited} credit note(s) for {month}"
    rows = [
        [
            i.number,
            "credit note" if i.sign < 0 else "invoice",
            i.customer_id,
            i.issue_date.isoformat(),
            i.currency,
            f"{i.sign * i.net}",
            f"{i.sign * i.tax}",
            f"{i.sign * i.total}",
        ]
        for i in sorted(invoices, key=lambda i: (i.currency, i.number))
    ]
    for currency in sorted({i.currency for i in invoices}):
        of = [i for i in invoices if i.currency == currency]
        net, tax, total = (sum((i.sign * getattr(i, f) for i in of), Decimal(0)) for f in ("net", "tax", "total"))
        rows.append(["TOTAL", "", "", "", currency, f"{net}", f"{tax}", f"{total}"])
    lines = [f"Invoicing of {month}.", ""]
    if rows:
        header = ["number", "kind", "customer", "issued", "currency", "net", "tax", "total"]
        lines += table(header, rows, frozenset({5, 6, 7}))
    else:
        lines.append("No invoices or credit notes for this month.")
    return subject, "\n".join(lines) + "\n"
