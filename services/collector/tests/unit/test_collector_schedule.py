"""Scheduled imports: cron fields in the source's time zone, and the day of the month winning over the weekday."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tarifa_collector.domain.schedule import next_run, normalise
from tarifa_common.errors import InvalidInput

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def test_a_daily_import_fires_at_its_local_hour() -> None:
    after = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # 09:00 in Sao Paulo
    assert next_run("30 3 * * *", after, SAO_PAULO) == datetime(2026, 11, 3, 6, 30, tzinfo=UTC)


def test_a_monthly_import_runs_on_its_day_of_the_month_whatever_the_weekday() -> None:
    after = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    # cron would also fire on every Monday; the monthly import means the 1st only
    assert normalise("0 3 1 * mon") == "0 3 1 * *"
    assert next_run("0 3 1 * mon", after, SAO_PAULO) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_ranges_and_all_are_accepted() -> None:
    assert normalise("0 2-4 * * 1-5") == "0 2-4 * * 1-5"


@pytest.mark.parametrize("expression", ["0 3 * *", "61 3 * * *", "0 3 32 * *", "every day"])
def test_a_bad_schedule_is_refused_naming_the_field(expression: str) -> None:
    with pytest.raises(InvalidInput) as error:
        normalise(expression)
    assert error.value.problems[0].field == "schedule"
