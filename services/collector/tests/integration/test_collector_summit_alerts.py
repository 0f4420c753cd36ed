"""A summit_integration source's alert follows the source, across a change of integration."""

from __future__ import annotations

import httpx
from collector_harness import SECRET, Collector

from tarifa_collector.adapters.intake import Intake
from tarifa_collector.adapters.summit import HttpSummitIntegrations, SummitImports
from tarifa_common import alerts, topics
from tarifa_common.testing import eventually

INTEGRATION = {
    "cdr_directory": "/var/summit/cdr",
    "import_period": "daily",
    "import_schedule": {"minute": "0", "hour": "3", "day_of_month": "all", "month": "all", "day_of_week": "all"},
    "delete_cdr_files": False,
    "active": True,
}


def voip_summit(request: httpx.Request) -> httpx.Response:
    """voip-summit misbehaving on purpose: integration `old` is down, `new` answers."""
    if request.url.path.endswith("/old"):
        return httpx.Response(503, text="maintenance")
    return httpx.Response(200, json=INTEGRATION)


async def test_an_alert_raised_for_the_old_integration_is_resolved_once_the_new_one_answers(
    sqlite_collector: Collector,
) -> None:
    collector = sqlite_collector
    await collector.add_source(id="summit", kind="summit_integration", format="summit_csv", integration_id="old")
    imports = SummitImports(
        Intake(collector.runtime.units),
        collector.settings,
        HttpSummitIntegrations("http://voip-summit", SECRET, attempts=1, transport=httpx.MockTransport(voip_summit)),
    )
    fingerprint = f"collector/summit-settings/{collector.tenant}/summit"

    async def alert_events() -> list[str]:
        return [
            e.type for e in await collector.events(topics.ALERT_EVENTS.name) if e.data["fingerprint"] == fingerprint
        ]

    await imports.refresh()

    async def raised() -> None:
        assert await alert_events() == [alerts.RAISED]

    await eventually(raised)
    answer = await collector.api.put(
        "/v1/sources/summit",
        json={"kind": "summit_integration", "format": "summit_csv", "integration_id": "new"},
        headers=collector.headers("operator"),
    )
    assert answer.status_code == 200, answer.text
    await imports.refresh()

    async def resolved() -> None:
        assert await alert_events() == [alerts.RAISED, alerts.RESOLVED]

    await eventually(resolved)
