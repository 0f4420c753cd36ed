"""The running rater on the real broker: cdr.raw in, stored and published cdr.rated out, once per record."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlmodel import select

from tarifa_common import contracts
from tarifa_common.broker import EmbeddedBroker
from tarifa_common.events import decode
from tarifa_common.kafka import Publisher
from tarifa_common.testing import eventually, read_all, unique
from tarifa_rater.adapters import store as sql
from tarifa_rater.adapters.tables import CallRow
from tarifa_rater.bootstrap import build
from tarifa_rater.domain.rating import DirectoryEntry
from tarifa_rater.domain.tariffs import parse_rates_csv

pytestmark = pytest.mark.broker


async def test_the_same_cdr_delivered_twice_is_rated_once_and_published_on_cdr_rated(
    broker: EmbeddedBroker, database_url: str, make_cdr, price_list: str, request: pytest.FixtureRequest
) -> None:
    settings_factory = request.getfixturevalue("rater_settings_factory")
    rater = build(settings_factory(database_url, broker.bootstrap_servers))
    tenant = unique("acme")
    await rater.runtime.start()
    publisher = Publisher(broker.bootstrap_servers, "test-collector")
    await publisher.start()
    try:
        async with rater.runtime.units() as uow:
            await sql.save_plan_version(
                uow.session, tenant, "standard", datetime(2026, 11, 1, tzinfo=UTC), parse_rates_csv(price_list)
            )
            await sql.assign_plan(uow.session, tenant, "tenant", "*", "standard")
            await sql.save_extension(uow.session, tenant, DirectoryEntry("2001", line_id="line-1", cost_centre="sales"))
        first = make_cdr(tenant, "r1", billable_seconds=125)
        await publisher.publish(first, "cdr.raw", key="pbx-hq")
        await publisher.publish(first, "cdr.raw", key="pbx-hq")  # redelivered: same event id
        await publisher.publish(
            make_cdr(tenant, "r1", billable_seconds=125, event_id="resent"), "cdr.raw", key="pbx-hq"
        )
        await publisher.publish(make_cdr(tenant, "r2", dialled="0 21 21 33334444"), "cdr.raw", key="pbx-hq")

        async def both_published() -> list[contracts.RatedCall]:
            records = await read_all(broker.bootstrap_servers, "cdr.rated", 1, timeout=1)
            events = [decode(r.headers, r.key, r.value) for r in records]
            mine = [contracts.RatedCall.model_validate(e.data) for e in events if e.tenant == tenant]
            assert len(mine) >= 2
            return mine

        rated = await eventually(both_published, timeout=60, interval=0.5)
        assert sorted((r.record_id, r.version, r.amount) for r in rated) == [
            ("r1", 1, Decimal("0.302")),  # 0.05 + 0.12 * 126/60
            ("r2", 1, Decimal("0.35")),  # 0.05 + 0.30 * 60/60, long distance
        ]
        async with rater.runtime.units() as uow:
            rows = (await uow.session.exec(select(CallRow.record_id).where(CallRow.tenant == tenant))).all()
        assert sorted(rows) == ["r1", "r2"]
    finally:
        await publisher.stop()
        await rater.runtime.stop()
