"""The integration's CDR import schedule: cron-like fields, checked per period; monthly: the day of the month wins."""

import pytest
from voip_summit_support import Service

from tarifa_common.errors import InvalidInput
from tarifa_voip_summit.domain.model import ImportPeriod, ImportSchedule


def test_a_monthly_import_ignores_the_weekday_because_the_day_of_the_month_wins() -> None:
    schedule = ImportSchedule(minute="0", hour="3", day_of_month="1", day_of_week="1")
    assert schedule.checked(ImportPeriod.MONTHLY).cron(ImportPeriod.MONTHLY) == "0 3 1 * *"


def test_a_daily_import_keeps_its_weekdays_and_ranges() -> None:
    schedule = ImportSchedule(minute="30", hour="7-9", day_of_week="1-5")
    assert schedule.checked(ImportPeriod.DAILY).cron(ImportPeriod.DAILY) == "30 7-9 * * 1-5"


@pytest.mark.parametrize(
    ("schedule", "period", "field", "problem"),
    [
        (ImportSchedule(minute="60"), ImportPeriod.DAILY, "import_schedule.minute", "outside 0-59"),
        (ImportSchedule(hour="*/2"), ImportPeriod.DAILY, "import_schedule.hour", "a range 'a-b' or 'all'"),
        (ImportSchedule(hour="9-7"), ImportPeriod.DAILY, "import_schedule.hour", "backwards"),
        (ImportSchedule(day_of_month="all"), ImportPeriod.MONTHLY, "import_schedule.day_of_month", "day of the month"),
        (ImportSchedule(day_of_month="15"), ImportPeriod.DAILY, "import_schedule.day_of_month", "every day"),
        (ImportSchedule(month="13"), ImportPeriod.DAILY, "import_schedule.month", "outside 1-12"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(
    schedule: ImportSchedule, period: ImportPeriod, field: str, problem: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        schedule.checked(period)
    [found] = refused.value.problems
    assert found.field == field and problem in found.problem


async def test_the_schedule_is_set_checked_with_the_period_and_published_as_the_cron_the_collector_runs(
    service: Service,
) -> None:
    integration = await service.integration()
    created = (await service.http.get(f"/v1/integrations/{integration}")).json()
    assert (created["import_schedule"]["hour"], created["import_cron"]) == ("3", "0 3 * * *")
    monthly = {"minute": "15", "hour": "2", "day_of_month": "1", "month": "all", "day_of_week": "1"}
    changed = await service.http.patch(
        f"/v1/integrations/{integration}", json={"import_period": "monthly", "import_schedule": monthly}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["import_cron"], changed.json()["import_schedule"]) == ("15 2 1 * *", monthly)
    back = await service.http.patch(f"/v1/integrations/{integration}", json={"import_period": "daily"})
    assert back.status_code == 422  # the stored schedule names a day of the month: not a daily one
    assert back.json()["errors"][0]["field"] == "import_schedule.day_of_month"
    bad = await service.http.patch(
        f"/v1/integrations/{integration}", json={"import_schedule": {**monthly, "minute": "61"}}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "import_schedule.minute"
    kept = (await service.http.get(f"/v1/integrations/{integration}")).json()
    assert kept["import_cron"] == "15 2 1 * *"
