"""A Summit integration's import settings as the collector runs them: the cron, the delete option, the checks."""

import pytest

from tarifa_collector.domain.sources import AfterImport, RecordFormat, SourceKind, SourceSettings
from tarifa_collector.domain.summit import SummitImport, cron_of
from tarifa_common.errors import InvalidInput

INTEGRATION = {
    "cdr_directory": "/var/summit/cdr",
    "import_period": "monthly",
    "import_schedule": {"minute": "15", "hour": "2", "day_of_month": "1", "month": "all", "day_of_week": "1"},
    "delete_cdr_files": True,
    "active": True,
}


def test_a_monthly_schedule_runs_on_its_day_of_the_month_whatever_the_weekday() -> None:
    assert cron_of(INTEGRATION["import_schedule"], "monthly") == "15 2 1 * *"  # type: ignore[arg-type]


def test_a_daily_schedule_keeps_its_weekdays() -> None:
    daily = {"minute": "30", "hour": "7", "day_of_month": "all", "month": "all", "day_of_week": "1-5"}
    assert cron_of(daily, "daily") == "30 7 * * 1-5"


def test_the_integration_becomes_a_drop_directory_import_of_the_source() -> None:
    summit = SourceSettings(
        id="summit",
        kind=SourceKind.SUMMIT_INTEGRATION,
        format=RecordFormat.SUMMIT_CSV,
        time_zone="America/Sao_Paulo",
        integration_id="abc",
    )
    summit.validate()
    run = SummitImport.from_integration(INTEGRATION).source(summit)
    assert (run.kind, run.directory, run.schedule, run.after_import, run.time_zone) == (
        SourceKind.DROP_DIRECTORY,
        "/var/summit/cdr",
        "15 2 1 * *",
        AfterImport.DELETE,
        "America/Sao_Paulo",
    )
    run.validate()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"integration_id": None}, "integration_id"),
        ({"directory": "/tmp"}, "directory"),
        ({"schedule": "0 3 * * *"}, "schedule"),
        ({"format": RecordFormat.ASTERISK_CSV}, "format"),
    ],
)
def test_a_summit_integration_source_takes_its_settings_from_voip_summit_only(changes: dict, field: str) -> None:  # type: ignore[type-arg]
    values = {"id": "summit", "kind": SourceKind.SUMMIT_INTEGRATION, "format": RecordFormat.SUMMIT_CSV}
    values |= {"integration_id": "abc"} | changes
    with pytest.raises(InvalidInput) as refused:
        SourceSettings(**values).validate()  # type: ignore[arg-type]
    assert refused.value.problems[0].field == field


async def test_a_schedule_the_collector_cannot_run_is_that_source_s_error_not_a_crash_of_the_refresh() -> None:
    import httpx

    from tarifa_collector.adapters.summit import HttpSummitIntegrations, SummitUnavailable

    broken = {**INTEGRATION, "import_schedule": {**INTEGRATION["import_schedule"], "minute": "61"}}  # type: ignore[dict-item]
    # voip-summit misbehaving on purpose: an answer whose schedule no cron can run.
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=broken))
    integrations = HttpSummitIntegrations("http://voip-summit", "s" * 48, transport=transport)
    with pytest.raises(SummitUnavailable, match=r"not an integration.*'61 2 1 \* \*' is not a valid schedule"):
        await integrations.import_settings("acme", "abc")
