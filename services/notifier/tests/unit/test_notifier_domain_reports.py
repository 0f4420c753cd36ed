"""Report schedules: cron in the tenant's zone, validation that names the field, the digest's content."""

from datetime import UTC, datetime

import pytest

from tarifa_common.alerts import Severity, SourceKind
from tarifa_common.errors import InvalidInput
from tarifa_notifier.domain.alerts import Alert
from tarifa_notifier.domain.reports import ReportFormat, ReportSchedule, alert_digest


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
