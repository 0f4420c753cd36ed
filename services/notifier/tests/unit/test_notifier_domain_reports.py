"""Report schedules: cron in the tenant's zone, validation that names the field, periods, the reports' tables."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tarifa_common.alerts import Severity, SourceKind
from tarifa_common.errors import InvalidInput
from tarifa_notifier.domain.alerts import Alert
from tarifa_notifier.domain.reports import (
    CostCentreTotal,
    InvoiceSummary,
    ReportFormat,
    ReportKind,
    ReportSchedule,
    alert_digest,
    calls_by_cost_centre,
    invoicing,
)


def schedule(**kw: object) -> ReportSchedule:
    values: dict[str, object] = {
        "id": "s1",
        "tenant": "acme",
        "name": "Yesterday's alerts",
        "cron": "0 7 * * *",
        "time_zone": "America/Sao_Paulo",
        "recipients": ("ops@hotel.test",),
    }
    values.update(kw)
    return ReportSchedule(**values)  # type: ignore[arg-type]


def test_seven_in_the_morning_in_sao_paulo_is_ten_utc() -> None:
    assert schedule().next_run(datetime(2026, 11, 22, 3, 0, tzinfo=UTC)) == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert schedule().next_run(datetime(2026, 11, 22, 10, 0, tzinfo=UTC)) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"cron": "0 7 * *"}, "cron"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"recipients": ("ops",)}, "recipients"),
    ],
)
def test_a_bad_schedule_names_the_field(override: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        schedule(**override)
    assert raised.value.problems[0].field == field


def alert(fingerprint: str, severity: Severity, hour: int) -> Alert:
    at = datetime(2026, 11, 21, hour, 0, tzinfo=UTC)
    return Alert("acme", fingerprint, severity, SourceKind.AUTOMATION, "source", "pbx-hq", "down", at, at)


def test_the_digest_counts_the_period_alerts_by_severity() -> None:
    start, end = datetime(2026, 11, 21, 10, tzinfo=UTC), datetime(2026, 11, 22, 10, tzinfo=UTC)
    alerts = [alert("a", Severity.URGENT, 12), alert("b", Severity.STANDARD, 13), alert("old", Severity.URGENT, 9)]
    subject, body = alert_digest(schedule(), alerts, start, end)
    assert subject == "Yesterday's alerts: 2 alert(s) from 2026-11-21 07:00 to 2026-11-22 07:00 (America/Sao_Paulo)"
    assert body.splitlines()[2:5] == ["urgent: 1", "important: 0", "standard: 1"]
    _, csv_body = alert_digest(schedule(format=ReportFormat.CSV), alerts, start, end)
    assert csv_body.splitlines() == [
        "starts_at,severity,object_kind,object_id,status,raised_count,summary",
        "2026-11-21T12:00:00+00:00,urgent,source,pbx-hq,firing,1,down",
        "2026-11-21T13:00:00+00:00,standard,source,pbx-hq,firing,1,down",
    ]


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [
        (ReportKind.ALERT_DIGEST, ReportFormat.PDF),
        (ReportKind.CALLS_BY_COST_CENTRE, ReportFormat.PDF),  # the rater offers CSV and XLSX
        (ReportKind.INVOICING, ReportFormat.CSV),  # the invoicer offers XLSX and PDF
    ],
)
def test_a_format_the_source_does_not_offer_is_refused_naming_the_format(kind: ReportKind, fmt: ReportFormat) -> None:
    with pytest.raises(InvalidInput) as refused:
        schedule(kind=kind, format=fmt)
    assert refused.value.problems[0].field == "format"
    assert kind.value in str(refused.value)


def test_yesterdays_calls_are_the_whole_previous_local_day_whatever_the_hour_of_the_run() -> None:
    calls = schedule(kind=ReportKind.CALLS_BY_COST_CENTRE)
    due = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # 07:00 on the 24th in São Paulo
    assert calls.period(due, last_run=due - timedelta(hours=5)) == (
        datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 3, 0, tzinfo=UTC),
    )
    late_evening = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)  # 22:30 on the 24th in São Paulo
    assert calls.period(late_evening, None)[0] == datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def test_last_months_invoicing_is_the_previous_local_month_across_a_new_year() -> None:
    monthly = schedule(kind=ReportKind.INVOICING, time_zone="Europe/Paris", format=ReportFormat.PDF)
    assert monthly.period(datetime(2027, 1, 5, 7, 0, tzinfo=UTC), None) == (
        datetime(2026, 11, 30, 23, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 0, tzinfo=UTC),
    )


def test_the_alert_digest_still_covers_the_time_since_its_previous_run() -> None:
    due, previous = datetime(2026, 11, 24, 10, 0, tzinfo=UTC), datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert schedule().period(due, previous) == (previous, due)
    assert schedule().period(due, None) == (due - timedelta(days=1), due)


def test_the_calls_table_totals_each_currency_exactly_and_names_calls_without_a_cost_centre() -> None:
    calls = schedule(kind=ReportKind.CALLS_BY_COST_CENTRE, name="Calls")
    start = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    subject, body = calls_by_cost_centre(
        calls,
        [
            CostCentreTotal("sales", "BRL", 2, 122, Decimal("0.36")),
            CostCentreTotal("", "BRL", 1, 3600, Decimal("10.10")),
            CostCentreTotal("lobby", "USD", 1, 60, Decimal("0.20")),
        ],
        start,
        start + timedelta(days=1),
    )
    assert subject == "Calls: 4 call(s) on 2026-11-23 by cost centre"
    rows = [line.split("  ") for line in body.splitlines()[4:]]
    assert [[cell.strip() for cell in row if cell.strip()] for row in rows] == [
        ["(no cost centre)", "BRL", "1", "1:00:00", "10.10"],
        ["sales", "BRL", "2", "0:02:02", "0.36"],
        ["lobby", "USD", "1", "0:01:00", "0.20"],
        ["TOTAL", "BRL", "3", "1:02:02", "10.46"],
        ["TOTAL", "USD", "1", "0:01:00", "0.20"],
    ]


def test_credit_notes_count_against_the_months_invoicing() -> None:
    monthly = schedule(kind=ReportKind.INVOICING, name="Invoicing", format=ReportFormat.XLSX)
    issued = date(2026, 11, 1)
    subject, body = invoicing(
        monthly,
        [
            InvoiceSummary(
                "F-000001", "invoice", "c1", issued, "EUR", Decimal("9.90"), Decimal("1.98"), Decimal("11.88")
            ),
            InvoiceSummary(
                "CN-000001", "credit_note", "c1", issued, "EUR", Decimal("1.00"), Decimal("0.20"), Decimal("1.20")
            ),
        ],
        "2026-10",
    )
    assert subject == "Invoicing: 1 invoice(s), 1 credit note(s) for 2026-10"
    assert body.splitlines()[-1].split() == ["TOTAL", "EUR", "8.90", "1.78", "10.68"]
    assert "CN-000001  credit note" in body and "-1.20" in body


def test_an_empty_period_says_so_rather_than_sending_an_empty_table() -> None:
    calls = schedule(kind=ReportKind.CALLS_BY_COST_CENTRE, name="Calls")
    start = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
    assert "No rated calls in this period." in calls_by_cost_centre(calls, [], start, start)[1]
