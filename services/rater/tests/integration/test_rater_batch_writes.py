"""The consumer's batch writes (SQLite and PostgreSQL): the new is kept and published once, values read back exactly."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import event
from sqlmodel import col, func, select

from tarifa_common import contracts, topics
from tarifa_common.broker import EmbeddedBroker
from tarifa_common.events import decode, dumps
from tarifa_common.kafka import Publisher
from tarifa_common.messaging import OutboxEntry
from tarifa_common.testing import eventually, read_all, unique
from tarifa_rater import handlers
from tarifa_rater.adapters import store as sql
from tarifa_rater.adapters.tables import CallRow, RatingRow
from tarifa_rater.bootstrap import Rater, build
from tarifa_rater.domain.rating import DirectoryEntry
from tarifa_rater.domain.tariffs import parse_rates_csv

NOV = datetime(2026, 11, 1, tzinfo=UTC)


async def setup_tenant(rater: Rater, tenant: str, price_list: str) -> None:
    async with rater.runtime.units() as uow:
        await sql.save_plan_version(uow.session, tenant, "standard", NOV, parse_rates_csv(price_list))
        await sql.assign_plan(uow.session, tenant, "tenant", "*", "standard")
        await sql.save_extension(uow.session, tenant, DirectoryEntry("2001", line_id="line-1", cost_centre="sales"))


async def rate_batch(rater: Rater, batch: list) -> list:
    async with rater.runtime.units() as uow:
        await handlers.rate_collected_cdrs(batch, uow, rater.store(uow), rater.numbering)
    return list(uow.emitted)


async def test_a_batch_mixing_new_and_already_kept_calls_stores_and_publishes_only_the_new_ones(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    await setup_tenant(offline_rater, tenant, price_list)
    first = await rate_batch(offline_rater, [make_cdr(tenant, "r1"), make_cdr(tenant, "r2", billable_seconds=125)])
    assert [e.subject for e in first] == ["r1", "r2"]
    again = await rate_batch(
        offline_rater,
        [
            make_cdr(tenant, "r1", event_id="resent-r1"),  # re-sent under another id: the unique key drops it
            make_cdr(tenant, "r3", dialled="0 21 21 33334444"),
            make_cdr(tenant, "r2", billable_seconds=125),
            make_cdr(tenant, "r4", extension="9999", caller="9999"),  # unknown extension: waits
        ],
    )
    assert [(e.type, e.subject) for e in again] == [(contracts.CDR_RATED, "r3"), (contracts.CDR_UNRATED, "r4")]
    rated = contracts.RatedCall.model_validate(again[0].data)
    assert (rated.version, rated.call_class, rated.amount) == (1, "long_distance", Decimal("0.35"))
    async with offline_rater.runtime.units() as uow:
        rows = (await uow.session.exec(select(CallRow).where(CallRow.tenant == tenant))).all()
        ratings = (await uow.session.exec(select(RatingRow).where(RatingRow.tenant == tenant))).all()
        outbox = (await uow.session.exec(select(OutboxEntry).order_by(col(OutboxEntry.id)))).all()
    assert sorted((r.record_id, r.status, r.version, r.amount) for r in rows) == [
        ("r1", "rated", 1, Decimal("0.17")),
        ("r2", "rated", 1, Decimal("0.302")),
        ("r3", "rated", 1, Decimal("0.35")),
        ("r4", "unrated", 0, None),
    ]
    assert sorted((r.record_id, r.version, r.amount, r.cause) for r in ratings) == [
        ("r1", 1, Decimal("0.17"), "rated"),
        ("r2", 1, Decimal("0.302"), "rated"),
        ("r3", 1, Decimal("0.35"), "rated"),
    ]
    emitted = [*first, *again]
    assert [(o.topic, o.event_id) for o in outbox] == [
        (topics.CDR_RATED.name, e.id) if e.type == contracts.CDR_RATED else (topics.CDR_UNRATED.name, e.id)
        for e in emitted
    ]
    # The rated events' data, serialised on the hot path, is byte for byte what the shared encoder writes.
    assert [o.value for o in outbox] == [dumps(e.data) for e in emitted]


async def test_times_and_amounts_of_the_batch_insert_read_back_exactly_and_compare_in_order(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    await setup_tenant(offline_rater, tenant, price_list)
    started = datetime(2026, 11, 23, 12, 0, 1, 250_000, tzinfo=timezone(timedelta(hours=-3)))
    [event] = await rate_batch(offline_rater, [make_cdr(tenant, "r1", started_at=started, billable_seconds=61)])
    async with offline_rater.runtime.units() as uow:
        [row] = (await uow.session.exec(select(CallRow).where(CallRow.tenant == tenant))).all()
        [rating] = (await uow.session.exec(select(RatingRow).where(RatingRow.tenant == tenant))).all()
    assert row.started_at == started and row.started_at.tzinfo == UTC
    assert row.started_at.isoformat() == "2026-11-23T15:00:01.250000+00:00"
    assert row.rated_at is not None and row.rated_at.tzinfo == UTC and rating.rated_at == row.rated_at
    assert row.rated_at.isoformat().replace("+00:00", "Z") == event.data["rated_at"]
    assert (row.amount, row.cost_amount, rating.amount, rating.cost_amount) == (
        Decimal("0.182"),  # 0.05 + 0.12 * 66/60
        Decimal("0.033"),
        Decimal("0.182"),
        Decimal("0.033"),
    )
    assert (row.transferred, row.out_of_class, row.charged_seconds) == (False, False, 66)

    async def in_scope(start: datetime, end: datetime) -> list[str]:
        async with offline_rater.runtime.units() as uow:
            found = await offline_rater.store(uow).calls_in_scope(handlers.RerateScope(tenant, start, end), 0, 10)
        return [call.record_id for call in found]

    microsecond = timedelta(microseconds=1)
    assert await in_scope(started, started + microsecond) == ["r1"]  # the start is inclusive, to the microsecond
    assert await in_scope(started + microsecond, started + timedelta(days=1)) == []
    assert await in_scope(started - timedelta(days=1), started) == []  # the end is exclusive


@pytest.mark.broker
async def test_a_batch_delivered_again_after_its_commit_is_a_no_op_and_re_sent_records_count_once(
    broker: EmbeddedBroker, database_url: str, make_cdr, price_list: str, rater_settings_factory
) -> None:
    """A crash between the database commit and the offset commit delivers the batch again, same event ids."""
    rater = build(rater_settings_factory(database_url, broker.bootstrap_servers))
    tenant = unique("acme")
    batch = [make_cdr(tenant, f"r{n}", billable_seconds=30 + n) for n in range(3)]
    await rater.runtime.start()
    publisher = Publisher(broker.bootstrap_servers, "test-collector")
    await publisher.start()
    [consumer] = rater.runtime.consumers
    try:
        await setup_tenant(rater, tenant, price_list)
        for event in batch:
            await publisher.publish(event, "cdr.raw", key="pbx-hq")

        async def handled(processed: int, duplicates: int) -> None:
            assert consumer.stats.processed >= processed and consumer.stats.duplicates >= duplicates
            async with rater.runtime.units() as uow:
                waiting = (await uow.session.exec(select(func.count()).select_from(OutboxEntry))).one()
            assert waiting == 0  # and published

        await eventually(lambda: handled(3, 0), timeout=60, interval=0.2)
        for event in batch:  # the same batch again, as after a crash before its offsets were committed
            await publisher.publish(event, "cdr.raw", key="pbx-hq")
        for n in range(3):  # the same records re-sent by a collector under other event ids
            await publisher.publish(make_cdr(tenant, f"r{n}", event_id=f"resent-{n}"), "cdr.raw", key="pbx-hq")
        await publisher.publish(make_cdr(tenant, "r9"), "cdr.raw", key="pbx-hq")
        # No inbox for collected CDRs (the call's key dedups them): the consumer hands all 10 on,
        # and what was kept, rated and published below shows the handler dropped the 6 copies.
        await eventually(lambda: handled(10, 0), timeout=60, interval=0.2)

        async def published() -> list[tuple[str | None, int]]:
            records = await read_all(broker.bootstrap_servers, "cdr.rated", 1, timeout=1)
            mine = [e for e in (decode(r.headers, r.key, r.value) for r in records) if e.tenant == tenant]
            assert "r9" in {e.subject for e in mine}  # the last one: the relay publishes in outbox order
            return sorted((e.subject, e.data["version"]) for e in mine)

        assert await eventually(published, timeout=60, interval=0.5) == [("r0", 1), ("r1", 1), ("r2", 1), ("r9", 1)]
        async with rater.runtime.units() as uow:
            kept = (await uow.session.exec(select(CallRow.record_id).where(CallRow.tenant == tenant))).all()
            ratings = (
                await uow.session.exec(select(func.count()).select_from(RatingRow).where(RatingRow.tenant == tenant))
            ).one()
        assert (sorted(kept), ratings) == (["r0", "r1", "r2", "r9"], 4)
    finally:
        await publisher.stop()
        await rater.runtime.stop()


async def test_a_rerate_chunk_writes_every_changed_call_with_its_own_new_version_and_previous_amount(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    # The chunk's calls are written together (one executemany per statement): each row must get its own values.
    tenant = unique("acme")
    await setup_tenant(offline_rater, tenant, price_list)
    durations = {"r1": 30, "r2": 61, "r3": 125}
    await rate_batch(offline_rater, [make_cdr(tenant, r, billable_seconds=s) for r, s in durations.items()])
    async with offline_rater.runtime.units() as uow:  # the local price was wrong: 0.10, not 0.12
        await sql.save_plan_version(
            uow.session, tenant, "standard", NOV, parse_rates_csv(price_list.replace("0.12,", "0.10,"))
        )
    scope = handlers.RerateScope(tenant, NOV, datetime(2026, 12, 1, tzinfo=UTC))
    async with offline_rater.runtime.units() as uow:
        progress = await handlers.rerate_chunk(uow, offline_rater.store(uow), scope, offline_rater.numbering, 0, 100)
    assert (progress.examined, progress.changed, progress.difference) == (3, 3, Decimal("-0.074"))
    async with offline_rater.runtime.units() as uow:
        rows = (await uow.session.exec(select(CallRow).where(CallRow.tenant == tenant))).all()
        ratings = (
            await uow.session.exec(select(RatingRow).where(RatingRow.tenant == tenant, RatingRow.version == 2))
        ).all()
    # 0.05 connect fee + 0.10 a minute of 30 s, 66 s (61 in 6 s steps) and 126 s (125 in 6 s steps)
    assert sorted((r.record_id, r.version, r.amount, r.charged_seconds) for r in rows) == [
        ("r1", 2, Decimal("0.10"), 30),
        ("r2", 2, Decimal("0.16"), 66),
        ("r3", 2, Decimal("0.26"), 126),
    ]
    assert sorted((r.record_id, r.amount, r.previous_amount, r.cause) for r in ratings) == [
        ("r1", Decimal("0.10"), Decimal("0.11"), "rerate"),
        ("r2", Decimal("0.16"), Decimal("0.182"), "rerate"),
        ("r3", Decimal("0.26"), Decimal("0.302"), "rerate"),
    ]


@pytest.mark.parametrize(
    ("waiting", "index"),
    [
        (handlers.Waiting(extensions=("9999",)), "ix_rater_call_extension"),
        (handlers.Waiting(reasons=("unknown_extension",)), "ix_rater_call_waiting"),
    ],
)
async def test_waiting_calls_are_found_through_indexes_that_hold_only_them(
    offline_rater: Rater, make_cdr, price_list: str, waiting: handlers.Waiting, index: str
) -> None:
    tenant = unique("acme")
    await setup_tenant(offline_rater, tenant, price_list)
    await rate_batch(offline_rater, [make_cdr(tenant, "r1"), make_cdr(tenant, "r2", extension="9999", caller="9999")])
    engine = offline_rater.runtime.engine
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if "FROM rater_call" in statement:
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with offline_rater.runtime.units() as uow:
            found = await offline_rater.store(uow).unrated_calls(tenant, 0, 100, waiting)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert [(call.record_id, call.reason) for call in found] == [("r2", "unknown_extension")]
    [(statement, parameters)] = statements
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.exec_driver_sql("SET enable_seqscan = off")  # a table this small would be scanned
            plan = (await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)).scalars().all()
        else:
            plan = [row[-1] for row in await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
        catalogue = (
            "SELECT indexdef FROM pg_indexes WHERE indexname = $1"
            if engine.dialect.name == "postgresql"
            else "SELECT sql FROM sqlite_master WHERE name = ?"
        )
        definition = (await connection.exec_driver_sql(catalogue, (index,))).scalar_one()
    assert any(index in line for line in plan), plan
    assert "WHERE" in definition and "'unrated'" in definition  # partial: a rated call is not in it
