"""Queued retries of waiting calls on a real database (SQLite and PostgreSQL): durable, merged, exactly once."""

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, func, select

from tarifa_common import alerts, contracts
from tarifa_common.db import migrate
from tarifa_common.messaging import OutboxEntry, outbox_headers
from tarifa_common.testing import eventually, unique
from tarifa_rater import handlers
from tarifa_rater.adapters import retries
from tarifa_rater.adapters import store as sql
from tarifa_rater.adapters.tables import CallRow, RatingRow, RetryRow, TariffPlanRow
from tarifa_rater.bootstrap import MIGRATIONS, Rater, build
from tarifa_rater.config import RaterSettings
from tarifa_rater.domain.rating import DirectoryEntry
from tarifa_rater.domain.tariffs import parse_rates_csv

NOV = datetime(2026, 11, 1, tzinfo=UTC)


async def open_rater(settings: RaterSettings, *, consume: bool = False) -> Rater:
    rater = build(settings, consume=consume)
    await migrate(rater.runtime.engine, MIGRATIONS, "rater")
    return rater


async def wait_for_a_tariff(rater: Rater, make_cdr, tenant: str, count: int) -> None:
    """`count` calls of a known extension, collected before the tenant had any tariff."""
    async with rater.runtime.units() as uow:
        await sql.save_extension(uow.session, tenant, DirectoryEntry("2001", line_id="line-1"))
    for n in range(count):
        async with rater.runtime.units() as uow:
            await handlers.rate_collected_cdr(make_cdr(tenant, f"r{n}"), uow, rater.store(uow), rater.numbering)


async def load_tariff_and_queue_retry(rater: Rater, tenant: str, price_list: str) -> None:
    async with rater.runtime.units() as uow:
        await sql.save_plan_version(uow.session, tenant, "standard", NOV, parse_rates_csv(price_list))
        await sql.assign_plan(uow.session, tenant, "tenant", "*", "standard")
        await rater.request_retry(uow, tenant, handlers.FOR_TARIFF)


async def ratings(rater: Rater, tenant: str) -> list[tuple[str, int]]:
    async with rater.runtime.units() as uow:
        query = select(RatingRow.record_id, RatingRow.version).where(RatingRow.tenant == tenant)
        return sorted((await uow.session.exec(query)).all())


async def outbox(rater: Rater, tenant: str, event_type: str) -> list[dict]:  # type: ignore[type-arg]
    """The events of `event_type` waiting in the outbox (no broker here: the relay publishes none)."""
    async with rater.runtime.units() as uow:
        rows = (await uow.session.exec(select(OutboxEntry).order_by(col(OutboxEntry.id)))).all()
    found = []
    for row in rows:
        headers = dict(outbox_headers(row))
        if headers.get("ce_type") == event_type.encode() and headers.get("ce_tenant") == tenant.encode():
            found.append(json.loads(row.value))
    return found


async def retry_of(rater: Rater, tenant: str) -> RetryRow:
    async with rater.runtime.units() as uow:
        row = await uow.session.get(RetryRow, tenant)
    assert row is not None
    return row


async def test_a_settings_change_commits_even_when_its_retry_fails_and_the_failure_is_alerted(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    await wait_for_a_tariff(offline_rater, make_cdr, tenant, 1)
    async with offline_rater.runtime.units() as uow:  # a stored CDR the rater can no longer read
        await uow.session.exec(sa.update(CallRow).where(col(CallRow.tenant) == tenant).values(cdr="{"))  # type: ignore[call-overload]
    await load_tariff_and_queue_retry(offline_rater, tenant, price_list)

    now = datetime.now(UTC)
    for attempt in range(1, retries.MAX_ATTEMPTS + 1):
        row = await offline_rater.work_retry(tenant, now=now)
        assert row is not None and row.attempts == attempt and "JSONDecodeError" in (row.error or "")
        now += timedelta(hours=1)  # past the back-off
    assert row.state == retries.FAILED
    assert await offline_rater.work_retry(tenant, now=now) is None  # failed: nothing due until the next change

    async with offline_rater.runtime.units() as uow:
        plans = (await uow.session.exec(select(TariffPlanRow.code).where(TariffPlanRow.tenant == tenant))).all()
    assert plans == ["standard"]  # the change stayed committed
    assert await ratings(offline_rater, tenant) == []  # and nothing was rated or published by the failed batches
    assert await outbox(offline_rater, tenant, contracts.CDR_RATED) == []
    [alert] = await outbox(offline_rater, tenant, alerts.RAISED)
    assert alert["fingerprint"] == f"rater/retry-failed/{tenant}" and alert["severity"] == "important"

    async with offline_rater.runtime.units() as uow:  # repaired; the next change queues a new round
        await uow.session.exec(  # type: ignore[call-overload]
            sa.update(CallRow).where(col(CallRow.tenant) == tenant).values(cdr=json.dumps(make_cdr(tenant, "r0").data))
        )
        await offline_rater.request_retry(uow, tenant, handlers.FOR_TARIFF)
    row = await offline_rater.work_retry(tenant, now=now)
    assert row is not None and (row.state, row.rated, row.attempts, row.error) == (retries.DONE, 1, 0, None)
    [resolved] = await outbox(offline_rater, tenant, alerts.RESOLVED)
    assert resolved["fingerprint"] == f"rater/retry-failed/{tenant}"


async def test_a_restarted_rater_resumes_a_retry_and_rates_every_call_exactly_once(
    database_url: str, rater_settings_factory: Callable[..., RaterSettings], make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    settings = rater_settings_factory(database_url).model_copy(update={"retry_chunk_size": 2})
    first = await open_rater(settings)
    await wait_for_a_tariff(first, make_cdr, tenant, 5)
    await load_tariff_and_queue_retry(first, tenant, price_list)
    row = await first.work_retry(tenant)
    assert row is not None and (row.state, row.examined, row.rated) == (retries.RUNNING, 2, 2)
    await first.runtime.engine.dispose()  # the process ends half way

    second = await open_rater(settings, consume=True)
    await second.runtime.start()  # its retry loop picks the row up where the first left it
    try:

        async def finished() -> RetryRow:
            row = await retry_of(second, tenant)
            assert row.state == retries.DONE, row.state
            return row

        row = await eventually(finished)
        assert (row.examined, row.rated) == (5, 5)
        assert await ratings(second, tenant) == [(f"r{n}", 1) for n in range(5)]
        published = await outbox(second, tenant, contracts.CDR_RATED)
        assert sorted(event["record_id"] for event in published) == [f"r{n}" for n in range(5)]
    finally:
        await second.runtime.stop()


async def test_two_changes_merge_into_one_retry_that_starts_its_scan_over(
    database_url: str, rater_settings_factory: Callable[..., RaterSettings], make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    rater = await open_rater(rater_settings_factory(database_url).model_copy(update={"retry_chunk_size": 2}))
    try:
        await wait_for_a_tariff(rater, make_cdr, tenant, 3)
        for n in (3, 4):  # two calls of an extension the directory does not know yet
            async with rater.runtime.units() as uow:
                cdr = make_cdr(tenant, f"r{n}", extension="2002", caller="2002")
                await handlers.rate_collected_cdr(cdr, uow, rater.store(uow), rater.numbering)
        await load_tariff_and_queue_retry(rater, tenant, price_list)
        row = await rater.work_retry(tenant)
        assert row is not None and (row.state, row.after_id) == (retries.RUNNING, 2)

        async with rater.runtime.units() as uow:  # the second change arrives while the first is under way
            await sql.save_extension(uow.session, tenant, DirectoryEntry("2002", line_id="line-2"))
            merged = await rater.request_retry(uow, tenant, handlers.for_extensions("2002"))
        assert (merged.state, merged.requests, merged.after_id) == (retries.RUNNING, 2, 0)
        assert (merged.reasons.split(), merged.extensions.split()) == (["no_tariff", "unknown_extension"], ["2002"])
        async with rater.runtime.units() as uow:
            assert (await uow.session.exec(select(func.count()).select_from(RetryRow))).one() >= 1
            assert len((await uow.session.exec(select(RetryRow).where(RetryRow.tenant == tenant))).all()) == 1

        while (row := await rater.work_retry(tenant)) is not None and row.state != retries.DONE:
            pass
        assert row is not None and row.rated == 5
        assert await ratings(rater, tenant) == [(f"r{n}", 1) for n in range(5)]
        assert len(await outbox(rater, tenant, contracts.CDR_RATED)) == 5
    finally:
        await rater.runtime.engine.dispose()


async def test_two_raters_working_one_retry_at_once_rate_each_call_once(
    database_url: str, rater_settings_factory: Callable[..., RaterSettings], make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    settings = rater_settings_factory(database_url).model_copy(update={"retry_chunk_size": 3})
    one, two = await open_rater(settings), await open_rater(settings)
    try:
        await wait_for_a_tariff(one, make_cdr, tenant, 12)
        await load_tariff_and_queue_retry(one, tenant, price_list)

        async def work_off(rater: Rater) -> None:
            while await rater.work_retry(tenant) is not None:
                await asyncio.sleep(0)

        await asyncio.gather(work_off(one), work_off(two))
        row = await retry_of(one, tenant)
        assert (row.state, row.rated) == (retries.DONE, 12)
        assert await ratings(one, tenant) == sorted((f"r{n}", 1) for n in range(12))
        assert len(await outbox(one, tenant, contracts.CDR_RATED)) == 12
    finally:
        await one.runtime.engine.dispose()
        await two.runtime.engine.dispose()
