"""The rater's handlers on a real database (SQLite and PostgreSQL): rate once, wait unrated, re-rate by version."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError
from sqlmodel import func, select

from tarifa_common import alerts, contracts
from tarifa_common.events import Event
from tarifa_common.testing import unique
from tarifa_rater import handlers
from tarifa_rater.adapters import store as sql
from tarifa_rater.adapters.tables import AllowanceRow, CallRow, LineUsageRow, RatingRow
from tarifa_rater.bootstrap import Rater
from tarifa_rater.domain.numbering import CallClass
from tarifa_rater.domain.rating import DirectoryEntry
from tarifa_rater.domain.tariffs import parse_rates_csv

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DESK = DirectoryEntry("2001", line_id="line-1", customer_id="cust-1", contract_id="ct-1", cost_centre="sales")


async def setup_tenant(rater: Rater, tenant: str, price_list: str, entry: DirectoryEntry | None = DESK) -> None:
    async with rater.runtime.units() as uow:
        await sql.save_plan_version(uow.session, tenant, "standard", NOV, parse_rates_csv(price_list))
        await sql.assign_plan(uow.session, tenant, "tenant", "*", "standard")
        if entry is not None:
            await sql.save_extension(uow.session, tenant, entry)


async def rate(rater: Rater, event: Event) -> list[Event]:
    """Rate one collected call in its own transaction; return what it emitted once committed."""
    async with rater.runtime.units() as uow:
        await handlers.rate_collected_cdr(event, uow, rater.store(uow), rater.numbering)
    return list(uow.emitted)


async def calls(rater: Rater, tenant: str) -> list[CallRow]:
    async with rater.runtime.units() as uow:
        return list((await uow.session.exec(select(CallRow).where(CallRow.tenant == tenant))).all())


async def test_a_call_is_rated_attributed_and_published_once(offline_rater: Rater, make_cdr, price_list: str) -> None:
    tenant = unique("acme")
    await setup_tenant(offline_rater, tenant, price_list)
    first = await rate(offline_rater, make_cdr(tenant, "r1", billable_seconds=61))
    again = await rate(offline_rater, make_cdr(tenant, "r1", billable_seconds=61, event_id="another-delivery"))
    assert again == []
    [event] = first
    rated = contracts.RatedCall.model_validate(event.data)
    assert event.type == contracts.CDR_RATED
    assert (rated.version, rated.call_class, rated.charged_seconds) == (1, "local", 66)
    assert rated.amount == Decimal("0.182")  # 0.05 + 0.12 * 66/60
    assert rated.cost_amount == Decimal("0.033")
    assert (rated.line_id, rated.customer_id, rated.contract_id, rated.cost_centre) == (
        "line-1",
        "cust-1",
        "ct-1",
        "sales",
    )
    assert (rated.tariff_plan, rated.rate, rated.band) == ("standard", "Local", "normal")
    assert rated.breakdown["connect_fee"] == "0.05"
    [row] = await calls(offline_rater, tenant)
    assert (row.status, row.version, row.amount) == ("rated", 1, Decimal("0.182"))


async def test_a_call_of_an_unknown_extension_waits_and_is_rated_when_the_line_arrives(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    await setup_tenant(offline_rater, tenant, price_list, entry=None)
    [waiting] = await rate(offline_rater, make_cdr(tenant, "r1", extension=None, caller="1133335555"))
    unrated = contracts.UnratedCall.model_validate(waiting.data)
    assert (waiting.type, unrated.reason) == (contracts.CDR_UNRATED, "unknown_extension")

    line = contracts.LineSnapshot(
        line_id="sip-9", contract_id="ct-9", extension=None, number="551133335555", dids=["1133335555"], due_day=10
    )
    change = contracts.LineChanged(tenant=tenant, kind=contracts.LineEventKind.CREATED, line=line)
    event = Event(
        type=contracts.line_event_type(line_kind := contracts.LineEventKind.CREATED),
        source="tarifa/voip-summit",
        tenant=tenant,
        data=change.model_dump(mode="json"),
    )
    assert line_kind is contracts.LineEventKind.CREATED
    async with offline_rater.runtime.units() as uow:
        await handlers.apply_line_change(event, uow, offline_rater.store(uow), offline_rater.numbering)
        assert uow.emitted == []  # the line event only queues the retry: the consumer's batch stays short
    retry = await offline_rater.work_retry(tenant)
    assert retry is not None and (retry.state, retry.rated) == ("done", 1)
    [row] = await calls(offline_rater, tenant)
    assert (row.status, row.version, row.line_id, row.contract_id, row.amount) == (
        "rated",
        1,
        "sip-9",
        "ct-9",
        Decimal("0.17"),
    )


async def test_a_call_outside_its_class_is_rated_flagged_and_raises_an_important_alert(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("hotel")
    lobby = DirectoryEntry("2001", line_id="lobby", allowed_classes=frozenset({CallClass.LOCAL}))
    await setup_tenant(offline_rater, tenant, price_list, entry=lobby)
    rated_event, alert_event = await rate(offline_rater, make_cdr(tenant, "r1", dialled="987654321"))
    rated = contracts.RatedCall.model_validate(rated_event.data)
    assert (rated.out_of_class, rated.call_class, rated.amount) == (True, "vc1", Decimal("0.65"))
    alert = alerts.AlertRaised.model_validate(alert_event.data)
    assert (alert.severity, alert.fingerprint) == (alerts.Severity.IMPORTANT, "rater/out-of-class/2001")


async def test_a_rerate_after_a_tariff_change_publishes_a_new_version_and_the_difference_once(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    await setup_tenant(offline_rater, tenant, price_list)
    await rate(offline_rater, make_cdr(tenant, "r1", billable_seconds=61))
    await rate(offline_rater, make_cdr(tenant, "r2", billable_seconds=30, dialled="0 21 21 33334444"))
    async with offline_rater.runtime.units() as uow:  # the local price was wrong: 0.10, not 0.12
        await sql.save_plan_version(
            uow.session, tenant, "standard", NOV, parse_rates_csv(price_list.replace("0.12,", "0.10,"))
        )
    scope = handlers.RerateScope(tenant, NOV, datetime(2026, 12, 1, tzinfo=UTC))

    async def rerate() -> tuple[handlers.RerateProgress, list[Event]]:
        async with offline_rater.runtime.units() as uow:
            progress = await handlers.rerate_chunk(
                uow, offline_rater.store(uow), scope, offline_rater.numbering, 0, 100
            )
            return progress, list(uow.emitted)

    progress, [event] = await rerate()
    rated = contracts.RatedCall.model_validate(event.data)
    assert (progress.examined, progress.changed) == (2, 1)
    assert (rated.record_id, rated.version) == ("r1", 2)
    assert (rated.amount, rated.previous_amount) == (Decimal("0.16"), Decimal("0.182"))  # 0.05 + 0.10 * 66/60
    assert rated.breakdown["difference"] == "-0.022"
    assert progress.difference == Decimal("-0.022")

    again, emitted = await rerate()
    assert (again.examined, again.changed, emitted) == (2, 0, [])
    async with offline_rater.runtime.units() as uow:
        versions = (
            await uow.session.exec(
                select(RatingRow.version, RatingRow.amount).where(
                    RatingRow.tenant == tenant, RatingRow.record_id == "r1"
                )
            )
        ).all()
        total = (
            await uow.session.exec(select(func.count()).select_from(RatingRow).where(RatingRow.tenant == tenant))
        ).one()
    assert sorted(versions) == [(1, Decimal("0.182")), (2, Decimal("0.16"))]
    assert total == 3


def line_event(tenant: str, kind: contracts.LineEventKind, dids: list[str]) -> Event:
    line = contracts.LineSnapshot(line_id="sip-9", contract_id="ct-9", number=None, dids=dids, due_day=10)
    change = contracts.LineChanged(tenant=tenant, kind=kind, line=line)
    return Event(
        type=contracts.line_event_type(kind),
        source="tarifa/voip-summit",
        tenant=tenant,
        data=change.model_dump(mode="json"),
    )


async def test_a_removed_did_no_longer_attributes_calls_to_the_line(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("isp")
    await setup_tenant(offline_rater, tenant, price_list, entry=None)
    for event in (
        line_event(tenant, contracts.LineEventKind.DID_ADDED, ["1133330001", "1133330002"]),
        line_event(tenant, contracts.LineEventKind.DID_REMOVED, ["1133330002"]),
    ):
        async with offline_rater.runtime.units() as uow:
            await handlers.apply_line_change(event, uow, offline_rater.store(uow), offline_rater.numbering)
    [kept] = await rate(offline_rater, make_cdr(tenant, "r1", extension=None, caller="1133330002"))
    [dropped] = await rate(offline_rater, make_cdr(tenant, "r2", extension=None, caller="1133330001"))
    assert contracts.RatedCall.model_validate(kept.data).line_id == "sip-9"
    assert contracts.UnratedCall.model_validate(dropped.data).reason == "unknown_extension"
    async with offline_rater.runtime.units() as uow:  # the line's due day came with it, for its allowance cycle
        allowance = await uow.session.get(AllowanceRow, (tenant, "sip-9"))
    assert allowance is not None and (allowance.due_day, allowance.included_seconds) == (10, 0)


async def test_an_allowance_covers_included_seconds_announces_thresholds_and_the_credit_limit_once(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("isp")
    await setup_tenant(offline_rater, tenant, price_list)
    async with offline_rater.runtime.units() as uow:
        allowance = handlers.Allowance("line-1", 60, due_day=10, credit_limit=Decimal("0.15"), contract_id="ct-1")
        await sql.save_allowance(uow.session, tenant, allowance)

    def by_type(events: list[Event]) -> dict[str, list[Event]]:
        found: dict[str, list[Event]] = {}
        for event in events:
            found.setdefault(event.type, []).append(event)
        return found

    first = by_type(await rate(offline_rater, make_cdr(tenant, "r1", billable_seconds=31)))
    second = by_type(await rate(offline_rater, make_cdr(tenant, "r2", billable_seconds=31)))
    third = by_type(await rate(offline_rater, make_cdr(tenant, "r3", billable_seconds=61)))
    resent = await rate(offline_rater, make_cdr(tenant, "r3", billable_seconds=61, event_id="resent"))

    amounts = [
        contracts.RatedCall.model_validate(e[contracts.CDR_RATED][0].data).amount for e in (first, second, third)
    ]
    assert amounts == [Decimal(0), Decimal("0.040666666667"), Decimal("0.182")]  # 36 s free; 12 of 36 s; none
    assert set(first) == {contracts.CDR_RATED}
    levels = [contracts.UsageThresholdReached.model_validate(e.data) for e in second[contracts.LINE_USAGE_THRESHOLD]]
    assert [(u.threshold_percent, u.used_seconds, str(u.cycle_start), str(u.cycle_end)) for u in levels] == [
        (80, 72, "2026-11-10", "2026-12-09"),
        (100, 72, "2026-11-10", "2026-12-09"),
    ]
    [credit] = [contracts.CreditLimitExceeded.model_validate(e.data) for e in third[contracts.LINE_CREDIT_EXCEEDED]]
    assert (credit.line_id, credit.contract_id, credit.spent) == ("line-1", "ct-1", Decimal("0.222666666667"))
    assert resent == []

    async with offline_rater.runtime.units() as uow:  # a cheaper local price: only the overage's share changes
        await sql.save_plan_version(
            uow.session, tenant, "standard", NOV, parse_rates_csv(price_list.replace("0.12,", "0.10,"))
        )
    scope = handlers.RerateScope(tenant, NOV, datetime(2026, 12, 1, tzinfo=UTC))
    async with offline_rater.runtime.units() as uow:
        progress = await handlers.rerate_chunk(uow, offline_rater.store(uow), scope, offline_rater.numbering, 0, 100)
    assert (progress.examined, progress.changed) == (3, 2)  # r1 stays free
    async with offline_rater.runtime.units() as uow:
        rows = {
            row.record_id: row.amount
            for row in (await uow.session.exec(select(CallRow).where(CallRow.tenant == tenant))).all()
        }
    assert rows == {"r1": Decimal(0), "r2": Decimal("0.036666666667"), "r3": Decimal("0.16")}


async def test_a_rerate_limited_to_a_line_or_a_source_touches_only_its_calls(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    await setup_tenant(offline_rater, tenant, price_list)
    async with offline_rater.runtime.units() as uow:
        await sql.save_extension(uow.session, tenant, DirectoryEntry("2002", line_id="line-2"))
    await rate(offline_rater, make_cdr(tenant, "a", extension="2001"))
    await rate(offline_rater, make_cdr(tenant, "b", extension="2002"))
    await rate(offline_rater, make_cdr(tenant, "c", extension="2002", source_id="pbx-branch"))
    async with offline_rater.runtime.units() as uow:
        await sql.save_plan_version(
            uow.session, tenant, "standard", NOV, parse_rates_csv(price_list.replace("0.12,", "0.10,"))
        )
    december = datetime(2026, 12, 1, tzinfo=UTC)

    async def rerate(scope: handlers.RerateScope) -> list[str]:
        async with offline_rater.runtime.units() as uow:
            await handlers.rerate_chunk(uow, offline_rater.store(uow), scope, offline_rater.numbering, 0, 100)
        return sorted(contracts.RatedCall.model_validate(e.data).record_id for e in uow.emitted)

    assert await rerate(handlers.RerateScope(tenant, NOV, december, source_id="pbx-hq", line="line-2")) == ["b"]
    assert await rerate(handlers.RerateScope(tenant, NOV, december, source_id="pbx-branch")) == ["c"]
    assert await rerate(handlers.RerateScope(tenant, NOV, december, line="2001")) == ["a"]
    assert await rerate(handlers.RerateScope(tenant, NOV, december)) == []


async def test_a_rated_event_is_written_exactly_as_the_contract_serialises_it(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("acme")
    await setup_tenant(offline_rater, tenant, price_list)
    [event] = await rate(offline_rater, make_cdr(tenant, "r1", billable_seconds=61, answered_by="2002"))
    assert event.data == contracts.RatedCall.model_validate(event.data).model_dump(mode="json")
    assert set(event.data) == set(contracts.RatedCall.model_fields)
    [waiting] = await rate(offline_rater, make_cdr(tenant, "r2", extension="9999", caller="9999"))
    assert waiting.data == contracts.UnratedCall.model_validate(waiting.data).model_dump(mode="json")


async def test_a_batch_holding_a_record_twice_keeps_it_publishes_it_and_uses_the_allowance_once(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("isp")
    await setup_tenant(offline_rater, tenant, price_list)
    async with offline_rater.runtime.units() as uow:
        await sql.save_allowance(uow.session, tenant, handlers.Allowance("line-1", 60, due_day=10))
    batch = [
        make_cdr(tenant, "r1", billable_seconds=31),
        make_cdr(tenant, "r1", billable_seconds=31, event_id="resent"),
        make_cdr(tenant, "r2", billable_seconds=31),
    ]
    async with offline_rater.runtime.units() as uow:
        await handlers.rate_collected_cdrs(batch, uow, offline_rater.store(uow), offline_rater.numbering)
    rated = [contracts.RatedCall.model_validate(e.data) for e in uow.emitted if e.type == contracts.CDR_RATED]
    # 60 s included: r1's 36 s are covered, r2 has 24 of its 36 s covered and pays 12 s of 0.122.
    assert [(r.record_id, r.amount) for r in rated] == [("r1", Decimal(0)), ("r2", Decimal("0.040666666667"))]
    async with offline_rater.runtime.units() as uow:
        await handlers.rate_collected_cdrs(batch[:1], uow, offline_rater.store(uow), offline_rater.numbering)
    assert uow.emitted == []
    async with offline_rater.runtime.units() as uow:
        row = await uow.session.get(LineUsageRow, (tenant, "line-1", date(2026, 11, 10)))
    assert row is not None and row.used_seconds == 72
    assert [row.record_id for row in await calls(offline_rater, tenant)] == ["r1", "r2"]


async def test_a_malformed_collected_cdr_is_refused_naming_the_field(offline_rater: Rater, make_cdr) -> None:
    event = make_cdr(unique("acme"), "r1")
    bad = Event(type=event.type, source=event.source, tenant=event.tenant, data={**event.data, "billable_seconds": -4})
    async with offline_rater.runtime.units() as uow:
        with pytest.raises(ValidationError, match="billable_seconds"):
            await handlers.rate_collected_cdrs([bad], uow, offline_rater.store(uow), offline_rater.numbering)


async def test_a_rerate_counts_the_new_version_in_the_allowance_not_the_call_twice(
    offline_rater: Rater, make_cdr, price_list: str
) -> None:
    tenant = unique("isp")
    await setup_tenant(offline_rater, tenant, price_list)
    async with offline_rater.runtime.units() as uow:
        allowance = handlers.Allowance("line-1", 60, due_day=10, credit_limit=Decimal("0.05"))
        await sql.save_allowance(uow.session, tenant, allowance)
    [first] = await rate(offline_rater, make_cdr(tenant, "r1", billable_seconds=31))  # 36 s, all covered
    assert contracts.RatedCall.model_validate(first.data).amount == Decimal(0)

    async def usage() -> tuple[int, Decimal]:
        async with offline_rater.runtime.units() as uow:
            row = await uow.session.get(LineUsageRow, (tenant, "line-1", date(2026, 11, 10)))
        assert row is not None
        return row.used_seconds, row.spent

    assert await usage() == (36, Decimal(0))
    minute_steps = "destination,call_class,price_per_minute,connect_fee,first_increment,next_increment\n"
    async with offline_rater.runtime.units() as uow:  # now charged by the minute: 60 s instead of 36 s
        await sql.save_plan_version(
            uow.session, tenant, "standard", NOV, parse_rates_csv(minute_steps + "Local,local,0.12,0.05,60,60\n")
        )
    scope = handlers.RerateScope(tenant, NOV, datetime(2026, 12, 1, tzinfo=UTC))

    async def rerate() -> list[Event]:
        async with offline_rater.runtime.units() as uow:
            await handlers.rerate_chunk(uow, offline_rater.store(uow), scope, offline_rater.numbering, 0, 100)
        return list(uow.emitted)

    by_type: dict[str, list[Event]] = {}
    for event in await rerate():
        by_type.setdefault(event.type, []).append(event)
    [rerated] = [contracts.RatedCall.model_validate(e.data) for e in by_type[contracts.CDR_RATED]]
    # 36 of the 60 s stay covered; 24 s pay their share of 0.05 + 0.12: 0.068.
    assert (rerated.version, rerated.charged_seconds, rerated.amount) == (2, 60, Decimal("0.068"))
    assert await usage() == (60, Decimal("0.068"))  # 36 + (60 - 36): the difference, not 36 + 60
    levels = [contracts.UsageThresholdReached.model_validate(e.data) for e in by_type[contracts.LINE_USAGE_THRESHOLD]]
    assert [(u.threshold_percent, u.used_seconds) for u in levels] == [(80, 60), (100, 60)]
    [credit] = [contracts.CreditLimitExceeded.model_validate(e.data) for e in by_type[contracts.LINE_CREDIT_EXCEEDED]]
    assert credit.spent == Decimal("0.068")
    assert await rerate() == []
    assert await usage() == (60, Decimal("0.068"))
