"""Billing runs on SQLite and PostgreSQL: exact totals, valid documents, gap-free numbers, no double billing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from tarifa_common import contracts, topics
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.db import make_engine, migrate, session_factory
from tarifa_common.errors import Conflict, InvalidInput
from tarifa_common.events import Event, utcnow
from tarifa_common.kafka import EventConsumer, Publisher, ensure_topics
from tarifa_common.messaging import OutboxEntry
from tarifa_common.testing import eventually, unique
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_invoicer import handlers
from tarifa_invoicer.adapters import accounts, mailing, runs
from tarifa_invoicer.adapters.backlog import KafkaRatedCallBacklog
from tarifa_invoicer.adapters.store import SqlStore, store_factory
from tarifa_invoicer.adapters.tables import InvoiceRow, Mailing, UsageCall
from tarifa_invoicer.bootstrap import MIGRATIONS, subscriptions
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.domain.checks import behind
from tarifa_invoicer.domain.invoice import Period

TENANT = "acme"
OCTOBER = Period.month("2026-10")
ISSUED_ON = date(2026, 11, 1)
PROFILE = {
    "seller_name": "Tarifa Telecom SAS",
    "seller_vat_id": "FR40123456789",
    "seller_street": "1 rue du Port",
    "seller_city": "Marseille",
    "seller_postcode": "13002",
    "seller_country": "FR",
    "seller_endpoint": "0009:12345678900011",
    "seller_gln": "5790000435975",
    "default_tax_rate": Decimal("20"),
    "currency": "EUR",
    "series": "F",
    "credit_series": "CN",
    "time_zone": "Europe/Paris",
}


def customer(name: str, **overrides: object) -> dict[str, object]:
    return {
        "name": name,
        "tax_id": "FR83404833048",
        "street": "5 quai Ouest",
        "city": "Annecy",
        "postcode": "74000",
        "country": "FR",
        "emails": [f"billing@{name.lower().replace(' ', '-')}.example"],
        "billable": True,
        "tax_treatment": "default",
        "tax_rate": None,
        "language": "fr",
        "edi_format": "ubl",
        "gln": "3012345000017",
        "peppol_id": None,
        "delivery_endpoint": None,
        **overrides,
    }


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    instance = make_engine(database_url)
    await migrate(instance, MIGRATIONS, "invoicer")
    yield instance
    await instance.dispose()


@pytest.fixture
def units(engine: AsyncEngine) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(session_factory(engine))


async def add_contract(
    units: UnitOfWorkFactory,
    customer_id: str,
    charges: list[dict[str, object]],
    lines: list[str] = (),  # type: ignore[assignment]
    allowance: str = "0",
) -> str:
    async with units() as uow:
        contract = await accounts.create_contract(
            uow,
            TENANT,
            {
                "customer_id": customer_id,
                "cycle": "monthly",
                "due_day": 10,
                "starts_on": date(2026, 1, 1),
                "ends_on": None,
                "usage_allowance": Decimal(allowance),
            },
        )
        for charge in charges:
            await accounts.add_charge(
                uow.session,
                TENANT,
                contract.id,
                {
                    "ends_on": None,
                    "tax_rate": None,
                    "line_id": None,
                    "recurring": True,
                    "starts_on": date(2026, 1, 1),
                    **charge,
                },
            )
        for line in lines:
            await accounts.assign_line(uow.session, TENANT, contract.id, line, date(2026, 1, 1))
        return contract.id


def rated(
    record: str,
    line: str,
    amount: str,
    *,
    version: int = 1,
    call_class: str = "local",
    seconds: int = 60,
    when: datetime = datetime(2026, 10, 15, 10, 0, tzinfo=UTC),
) -> Event:
    call = contracts.RatedCall(
        tenant=TENANT,
        record_id=record,
        version=version,
        source_id="pbx",
        call_id=record,
        started_at=when,
        direction=contracts.Direction.OUTBOUND,
        dialled="0123",
        call_class=call_class,
        billable_seconds=seconds,
        charged_seconds=seconds,
        amount=Decimal(amount),
        line_id=line,
        rated_at=when,
    )
    return Event(type=contracts.CDR_RATED, source="tarifa/rater", tenant=TENANT, data=call.model_dump(mode="json"))


async def deliver(units: UnitOfWorkFactory, *events: Event) -> None:
    async with units() as uow:
        for event in events:
            await handlers.record_rated_call(event, SqlStore(uow))


async def bill(
    units: UnitOfWorkFactory, *, dry_run: bool = False, chunk: int = 200, **kwargs: object
) -> handlers.RunReport:
    return await handlers.bill_period(
        store_factory(units),
        TENANT,
        OCTOBER,
        issue_date=ISSUED_ON,
        dry_run=dry_run,
        chunk=chunk,
        new_id=accounts.new_id,
        **kwargs,  # type: ignore[arg-type]
    )


async def invoices(units: UnitOfWorkFactory) -> list[InvoiceRow]:
    async with units() as uow:
        return await accounts.list_invoices(uow.session, TENANT, None, None)


@pytest_asyncio.fixture
async def tenant(units: UnitOfWorkFactory) -> dict[str, str]:
    """A profile and three customers: default rate, exempt, and a specific 5.5 % rate."""
    async with units() as uow:
        await accounts.save_profile(uow.session, TENANT, PROFILE)
        standard = await accounts.create_customer(uow.session, TENANT, customer("Hotel du Lac"))
        exempt = await accounts.create_customer(uow.session, TENANT, customer("Ecole Libre", tax_treatment="exempt"))
        reduced = await accounts.create_customer(
            uow.session, TENANT, customer("Presse Locale", tax_treatment="specific", tax_rate=Decimal("5.5"))
        )
    return {"standard": standard.id, "exempt": exempt.id, "reduced": reduced.id}


async def test_a_run_issues_cent_exact_invoices_whose_ubl_and_edifact_validate(
    units: UnitOfWorkFactory, tenant: dict[str, str], ubl_validator, edifact_checker
) -> None:
    hotel = await add_contract(
        units,
        tenant["standard"],
        [
            {"description": "Subscription", "amount": Decimal("29.99")},
            {"description": "Router rental", "amount": Decimal("5.00"), "tax_rate": Decimal("10")},
            {"description": "Handset", "amount": Decimal("89.90"), "recurring": False, "starts_on": date(2026, 10, 3)},
        ],
        lines=["l-hotel"],
        allowance="1.00",
    )
    school = await add_contract(units, tenant["exempt"], [{"description": "Subscription", "amount": Decimal("19.90")}])
    press = await add_contract(units, tenant["reduced"], [{"description": "Subscription", "amount": Decimal("10.00")}])
    # 300 calls of 0.004167 each: 1.2501 -> 1.25, minus the 1.00 allowance
    await deliver(units, *[rated(f"r{i}", "l-hotel", "0.004167") for i in range(300)])
    await deliver(
        units, rated("late", "l-hotel", "9.99", when=datetime(2026, 10, 31, 23, 30, tzinfo=UTC))
    )  # 00:30 Paris

    report = await bill(units)

    assert report.issued == ["F-000001", "F-000002", "F-000003"]
    by_contract = {row.contract_id: row for row in await invoices(units)}
    # hotel: 20 % on 29.99 + 89.90 + 1.25 - 1.00 = 120.14 -> 24.03; 10 % on 5.00 -> 0.50
    assert (by_contract[hotel].net, by_contract[hotel].tax, by_contract[hotel].total) == (
        Decimal("125.14"),
        Decimal("24.53"),
        Decimal("149.67"),
    )
    assert (by_contract[school].net, by_contract[school].tax, by_contract[school].total) == (
        Decimal("19.90"),
        Decimal("0.00"),
        Decimal("19.90"),
    )
    assert (by_contract[press].tax, by_contract[press].total) == (Decimal("0.55"), Decimal("10.55"))
    usage = [line for line in json.loads(by_contract[hotel].lines) if line["kind"] == "usage"]
    assert usage == [
        {**usage[0], "calls": 300, "seconds": 18000, "net": "1.25", "description": "Calls local: 300 calls, 300.00 min"}
    ]
    for row in by_contract.values():
        assert ubl_validator.errors(row.ubl.encode()) == []
        assert edifact_checker.errors(row.edifact) == []
    async with units() as uow:
        late = (await uow.session.exec(select(UsageCall).where(UsageCall.record_id == "late"))).one()
        outbox = (await uow.session.exec(select(OutboxEntry).where(OutboxEntry.topic == "invoice.issued"))).all()
    assert late.invoice_id is None  # after midnight in Paris: November's
    assert len(outbox) == 3


async def test_a_repeated_run_issues_nothing_twice(units: UnitOfWorkFactory, tenant: dict[str, str]) -> None:
    for _ in range(3):
        await add_contract(units, tenant["standard"], [{"description": "Subscription", "amount": Decimal("10")}])
    first = await bill(units)
    second = await bill(units)
    assert len(first.issued) == 3
    assert (second.issued, second.skipped) == ([], 3)
    assert [row.number for row in await invoices(units)] == ["F-000001", "F-000002", "F-000003"]


async def test_two_racing_runs_number_every_invoice_once_without_gaps(
    engine: AsyncEngine, units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    for _ in range(24):
        await add_contract(units, tenant["standard"], [{"description": "Subscription", "amount": Decimal("10")}])
    other_engine = make_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        other = UnitOfWorkFactory(session_factory(other_engine))
        one, two = await asyncio.gather(bill(units, chunk=5), bill(other, chunk=5))
    finally:
        await other_engine.dispose()
    assert len(one.issued) + len(two.issued) == 24
    rows = await invoices(units)
    assert sorted(row.sequence for row in rows) == list(range(1, 25))
    assert len({row.contract_id for row in rows}) == 24


async def test_a_rerate_before_issue_replaces_the_call_and_after_issue_goes_to_the_next_period(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    contract = await add_contract(units, tenant["exempt"], [], lines=["l1"])
    await deliver(
        units, rated("a", "l1", "1.00"), rated("a", "l1", "1.50", version=2), rated("a", "l1", "1.50", version=2)
    )
    await deliver(units, rated("a", "l1", "0.70", version=1))  # a late, older version changes nothing
    report = await bill(units)
    (october,) = await invoices(units)
    assert (report.issued, october.total) == (["F-000001"], Decimal("1.50"))

    await deliver(units, rated("a", "l1", "1.20", version=3))  # arrives after issue: -0.30 next time
    november = Period.month("2026-11")
    await handlers.bill_period(
        store_factory(units), TENANT, november, issue_date=date(2026, 12, 1), new_id=accounts.new_id
    )
    rows = {row.period_start: row for row in await invoices(units)}
    assert rows[october.period_start].total == Decimal("1.50")  # issued invoices never change
    lines = json.loads(rows[november.start].lines)
    assert [(line["kind"], line["net"], line["calls"]) for line in lines] == [("adjustment", "-0.30", 0)]
    assert rows[november.start].total == Decimal("-0.30")
    assert contract == rows[november.start].contract_id


async def test_a_credit_note_references_the_invoice_which_stays_unchanged(
    units: UnitOfWorkFactory, tenant: dict[str, str], ubl_validator, edifact_checker
) -> None:
    await add_contract(units, tenant["standard"], [{"description": "Subscription", "amount": Decimal("42.00")}])
    await bill(units)
    (invoice,) = await invoices(units)
    async with units() as uow:
        credit = await handlers.credit_invoice(
            SqlStore(uow), TENANT, invoice.id, issue_date=date(2026, 11, 5), new_id=accounts.new_id
        )
    with pytest.raises(Conflict):
        async with units() as uow:
            await handlers.credit_invoice(
                SqlStore(uow), TENANT, invoice.id, issue_date=date(2026, 11, 5), new_id=accounts.new_id
            )
    rows = {row.number: row for row in await invoices(units)}
    assert set(rows) == {"F-000001", "CN-000001"}
    assert rows["CN-000001"].credited_invoice_id == invoice.id
    assert rows["CN-000001"].total == rows["F-000001"].total == Decimal("50.40")
    assert ubl_validator.errors(rows["CN-000001"].ubl.encode()) == []
    assert "BGM+381+CN-000001+9'" in rows["CN-000001"].edifact
    assert edifact_checker.errors(rows["CN-000001"].edifact) == []
    assert credit.number == "CN-000001"


async def test_a_dry_run_issues_nothing_and_reports_contracts_with_lines_but_no_calls(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    silent = await add_contract(
        units, tenant["standard"], [{"description": "S", "amount": Decimal("10")}], lines=["quiet"]
    )
    await add_contract(units, tenant["standard"], [{"description": "S", "amount": Decimal("10")}], lines=["busy"])
    await deliver(units, rated("b1", "busy", "0.10"), rated("o1", "nobody", "0.20"), rated("o2", "nobody", "0.20"))
    run_id = await runs.create_run(units, TENANT, OCTOBER, True)
    report = await runs.execute_run(
        units, run_id, TENANT, OCTOBER, dry_run=True, hold_on_findings=False, issue_date=ISSUED_ON
    )
    assert await invoices(units) == []
    assert report.net == Decimal("20.10")
    assert [(f.check, f.object_id) for f in report.findings if f.check == "lines_without_calls"] == [
        ("lines_without_calls", silent)
    ]
    (orphans,) = [f for f in report.findings if f.check == "calls_without_contract"]
    assert orphans.detail.startswith("2 rated calls")
    held = await bill(units, hold_on_findings=True)
    assert held.held and held.issued == []
    async with units() as uow:
        run = await accounts.get_run(uow.session, TENANT, run_id)
    assert (run.status, run.done, run.total) == ("finished", 2, 2)
    async with units() as uow:  # assigning the line afterwards brings its calls to the contract
        await accounts.assign_line(uow.session, TENANT, silent, "nobody", date(2026, 10, 1))
    adopted = await bill(units, dry_run=True)
    assert adopted.net == Decimal("20.50")
    assert [f.check for f in adopted.findings if f.check in {"calls_without_contract", "lines_without_calls"}] == []


async def test_a_customer_far_above_its_last_twelve_months_is_flagged(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    contract = await add_contract(
        units, tenant["standard"], [{"description": "S", "amount": Decimal("10")}], lines=["l9"]
    )
    await handlers.bill_period(
        store_factory(units), TENANT, Period.month("2026-09"), issue_date=date(2026, 10, 1), new_id=accounts.new_id
    )
    await deliver(units, rated("big", "l9", "500.00"))
    report = await bill(units, dry_run=True)
    flagged = [f for f in report.findings if f.check == "total_against_12_months"]
    assert [f.object_id for f in flagged] == [tenant["standard"]]
    assert contract


def line_event(kind: contracts.LineEventKind, contract_id: str, line_id: str, day: date) -> Event:
    change = contracts.LineChanged(
        tenant=TENANT, kind=kind, line=contracts.LineSnapshot(line_id=line_id, contract_id=contract_id, due_day=10)
    )
    return Event(
        type=contracts.line_event_type(kind),
        source="tarifa/voip-summit",
        tenant=TENANT,
        data=change.model_dump(mode="json"),
        time=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
    )


async def test_lines_from_voip_summit_are_assigned_and_their_rental_ends_with_them(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    contract = await add_contract(units, tenant["exempt"], [])
    async with units() as uow:
        await accounts.add_charge(
            uow.session,
            TENANT,
            contract,
            {
                "description": "Line rental",
                "amount": Decimal("31.00"),
                "recurring": True,
                "starts_on": date(2026, 1, 1),
                "ends_on": None,
                "tax_rate": None,
                "line_id": "sip-7",
            },
        )
    async with units() as uow:
        await handlers.follow_line(
            line_event(contracts.LineEventKind.CREATED, contract, "sip-7", date(2026, 9, 1)), SqlStore(uow)
        )
        await handlers.follow_line(
            line_event(contracts.LineEventKind.CREATED, "unknown", "sip-8", date(2026, 9, 1)), SqlStore(uow)
        )
    await deliver(units, rated("c1", "sip-7", "0.50"))
    async with units() as uow:
        await handlers.follow_line(
            line_event(contracts.LineEventKind.CANCELLED, contract, "sip-7", date(2026, 10, 10)), SqlStore(uow)
        )
    await bill(units)
    (invoice,) = await invoices(units)
    lines = json.loads(invoice.lines)
    # rental for 1-10 October (10/31 of 31.00) and the call, which was attributed through the line
    assert [(line["description"], line["net"]) for line in lines] == [
        ("Line rental (10/31 days)", "10.00"),
        ("Calls local: 1 calls, 1.00 min", "0.50"),
    ]


async def test_edi_is_pushed_signed_once_through_failures_and_logged(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    import httpx
    from invoicer_erp_endpoint import ErpEndpoint, running

    from tarifa_invoicer.adapters.delivery import deliver_pending
    from tarifa_invoicer.adapters.tables import Delivery
    from tarifa_invoicer.config import InvoicerSettings

    settings = InvoicerSettings(
        database_url="sqlite+aiosqlite://", edi_signing_secret="s3cret", delivery_max_attempts=2
    )
    async with running(ErpEndpoint(secret="s3cret", fail_first=2)) as erp:
        async with units() as uow:
            pushed = await accounts.create_customer(uow.session, TENANT, customer("Pushed", delivery_endpoint=erp.url))
        await add_contract(units, pushed.id, [{"description": "Subscription", "amount": Decimal("10")}])
        await add_contract(units, tenant["standard"], [{"description": "Subscription", "amount": Decimal("10")}])
        await bill(units)
        async with httpx.AsyncClient() as client:
            assert await deliver_pending(units, settings, client) == 1  # 503, 503, then 202 within one pass
            assert await deliver_pending(units, settings, client) == 0
    (invoice,) = [row for row in await invoices(units) if row.customer_id == pushed.id]
    assert erp.received == {invoice.id: invoice.ubl.encode()}
    assert erp.requests == 3
    async with units() as uow:
        (delivery,) = (await uow.session.exec(select(Delivery))).all()
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert json.loads(delivery.log)[0]["outcome"] == "HTTP 202"


async def test_an_endpoint_that_keeps_failing_is_marked_failed_and_alerted(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    import httpx
    from invoicer_erp_endpoint import ErpEndpoint, running

    from tarifa_invoicer.adapters.delivery import deliver_pending
    from tarifa_invoicer.adapters.tables import Delivery
    from tarifa_invoicer.config import InvoicerSettings

    settings = InvoicerSettings(database_url="sqlite+aiosqlite://", edi_signing_secret="wrong", delivery_max_attempts=2)
    async with running(ErpEndpoint(secret="s3cret")) as erp:
        async with units() as uow:
            pushed = await accounts.create_customer(uow.session, TENANT, customer("Pushed", delivery_endpoint=erp.url))
        await add_contract(units, pushed.id, [{"description": "Subscription", "amount": Decimal("10")}])
        await bill(units)
        async with httpx.AsyncClient() as client:
            await deliver_pending(units, settings, client)
            await deliver_pending(units, settings, client)
    assert erp.received == {}
    async with units() as uow:
        (delivery,) = (await uow.session.exec(select(Delivery))).all()
        alerts = (await uow.session.exec(select(OutboxEntry).where(OutboxEntry.topic == "alert.events"))).all()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert [entry["outcome"] for entry in json.loads(delivery.log)] == ["HTTP 401", "HTTP 401"]
    assert len(alerts) == 1


async def test_reports_list_the_months_invoices_and_the_twelve_month_synthesis_with_a_chart(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    import io

    from openpyxl import load_workbook
    from pypdf import PdfReader

    from tarifa_invoicer.adapters import reports

    await add_contract(units, tenant["standard"], [{"description": "S", "amount": Decimal("10")}])
    await add_contract(units, tenant["exempt"], [{"description": "S", "amount": Decimal("19.90")}])
    await handlers.bill_period(
        store_factory(units), TENANT, Period.month("2026-09"), issue_date=date(2026, 10, 1), new_id=accounts.new_id
    )
    await bill(units)
    (september_school,) = [
        row for row in await invoices(units) if row.customer_id == tenant["exempt"] and row.period_start.month == 9
    ]
    async with units() as uow:
        await handlers.credit_invoice(
            SqlStore(uow), TENANT, september_school.id, issue_date=date(2026, 11, 2), new_id=accounts.new_id
        )
    async with units() as uow:
        table_report = await reports.invoice_report(uow.session, TENANT, OCTOBER.start)
        synthesis_report = await reports.synthesis_report(uow.session, TENANT, OCTOBER.start)
    table = load_workbook(io.BytesIO(reports.to_xlsx(table_report, total_row=True))).active
    synthesis_book = load_workbook(io.BytesIO(reports.to_xlsx(synthesis_report, chart=True)))
    pdf_text = " ".join(
        page.extract_text() for page in PdfReader(io.BytesIO(reports.to_pdf(synthesis_report, chart=True))).pages
    )
    assert "12 months to 2026-10" in pdf_text and "Hotel du Lac" in pdf_text
    rows = list(table.iter_rows(values_only=True))
    assert [row[0] for row in rows] == ["Number", "F-000003", "F-000004", "Total"]
    assert sorted(row[6] for row in rows[1:3]) == [10, 19.9]  # XLSX numbers are floats
    assert rows[3][6] == "=SUM(G2:G3)"
    synthesis = synthesis_book.active
    header, *customers = list(synthesis.iter_rows(values_only=True))
    assert header[1] == "2025-11" and header[12] == "2026-10"
    by_name = {row[0]: row for row in customers}
    # September's invoice of Ecole Libre was credited in full (CN-000001 is September's period)
    assert (
        by_name["Ecole Libre"][11:14] in [(0, 19.9, 19.9), (Decimal("0.00"), 19.9, 19.9)]
        or by_name["Ecole Libre"][12] == 19.9
    )
    assert by_name["Hotel du Lac"][11:14] == (10, 10, 20)
    assert len(synthesis._charts) == 1


async def test_the_scheduler_bills_the_closed_month_once_from_its_day_on(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    await add_contract(units, tenant["standard"], [{"description": "S", "amount": Decimal("10")}])
    assert await runs.bill_closed_periods(units, date(2026, 11, 1), bill_day=2) == []
    (run_id,) = await runs.bill_closed_periods(units, date(2026, 11, 2), bill_day=2)
    assert await runs.bill_closed_periods(units, date(2026, 11, 3), bill_day=2) == []
    (invoice,) = await invoices(units)
    assert (invoice.period_start, invoice.issue_date, invoice.run_id) == (OCTOBER.start, date(2026, 11, 2), run_id)


async def test_a_credit_note_is_pushed_like_its_invoice(units: UnitOfWorkFactory, tenant: dict[str, str]) -> None:
    from tarifa_invoicer.adapters.tables import Delivery

    async with units() as uow:
        pushed = await accounts.create_customer(
            uow.session, TENANT, customer("Pushed", delivery_endpoint="https://erp.example/edi", edi_format="edifact")
        )
    await add_contract(units, pushed.id, [{"description": "S", "amount": Decimal("10")}])
    await bill(units)
    (invoice,) = await invoices(units)
    async with units() as uow:
        credit = await handlers.credit_invoice(
            SqlStore(uow), TENANT, invoice.id, issue_date=ISSUED_ON, new_id=accounts.new_id
        )
    async with units() as uow:
        queued = (await uow.session.exec(select(Delivery))).all()
    assert sorted((d.invoice_id, d.edi_format) for d in queued) == sorted(
        [(invoice.id, "edifact"), (credit.id, "edifact")]
    )


async def test_the_cli_bills_a_period_with_progress_dry_run_first(tmp_path, tenant: dict[str, str], units) -> None:
    import os
    import shutil
    import sys

    for _ in range(3):
        await add_contract(units, tenant["standard"], [{"description": "S", "amount": Decimal("10")}])
    async with units() as uow:
        url = str(uow.session.bind.url.render_as_string(hide_password=False))
    tarifa = shutil.which("tarifa", path=os.path.dirname(sys.executable))
    assert tarifa is not None
    collector = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    kafka = f"127.0.0.1:{free_port()}"  # nor there

    async def run(*extra: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            tarifa,
            "invoicer",
            "bill",
            "--tenant",
            TENANT,
            "--period",
            "2026-10",
            "--issue-date",
            "2026-11-01",
            *extra,
            env={
                **os.environ,
                "TARIFA_INVOICER_DATABASE_URL": url,
                "TARIFA_INVOICER_COLLECTOR_URL": collector,
                "TARIFA_INVOICER_KAFKA_BOOTSTRAP_SERVERS": kafka,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        return process.returncode or 0, out.decode(), err.decode()

    code, out, err = await run("--dry-run")
    assert code == 0, err
    assert "would issue 3 invoices, net 30.00" in out
    assert f"check sources_delivered collector: could not ask the collector at {collector}" in out
    assert f"check rated_calls_caught_up broker: could not ask the broker at {kafka}" in out
    assert "3/3 contracts" in err
    assert await invoices(units) == []
    code, out, err = await run()
    assert code == 0, err
    assert "issued 3 invoices, net 30.00; 0 already issued before" in out
    assert [row.number for row in await invoices(units)] == ["F-000001", "F-000002", "F-000003"]


async def test_lines_are_imported_from_a_csv_file_all_or_nothing(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    from tarifa_common.errors import InvalidInput

    contract = await add_contract(units, tenant["standard"], [])
    good = f"contract_id,line_id,assigned_on\n{contract},ext-1,2026-10-01\n{contract},ext-2,2026-10-02\n"
    async with units() as uow:
        assert await accounts.import_lines(uow.session, TENANT, good) == 2
    bad = f"contract_id,line_id,assigned_on\n{contract},ext-3,2026-10-01\n{contract},ext-1,2026-10-01\n"
    with pytest.raises(InvalidInput) as error:
        async with units() as uow:
            await accounts.import_lines(uow.session, TENANT, bad)
    assert error.value.problems[0].field == "line 3"
    assert "already assigned" in error.value.message
    async with units() as uow:
        assert await SqlStore(uow).contract_of_line(TENANT, "ext-3", None) is None
        assert await SqlStore(uow).contract_of_line(TENANT, None, "ext-2") == contract


class Mailbox:
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd's hook
        self.messages.append(message_from_bytes(envelope.content, policy=default))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, InvoicerSettings]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, InvoicerSettings(smtp_port=port, email_max_attempts=2)
    controller.stop()


async def mailings(units: UnitOfWorkFactory) -> dict[str, Mailing]:
    async with units() as uow:
        return {row.invoice_id: row for row in (await uow.session.exec(select(Mailing))).all()}


async def test_invoices_are_emailed_once_after_issue_as_the_customer_or_the_tenant_asks(
    units: UnitOfWorkFactory, tenant: dict[str, str], smtp: tuple[Mailbox, InvoicerSettings]
) -> None:
    box, settings = smtp
    async with units() as uow:
        await accounts.save_profile(uow.session, TENANT, {**PROFILE, "auto_email": "pdf"})
        with_edi = await accounts.create_customer(uow.session, TENANT, customer("Port Sud", auto_email="pdf_and_edi"))
        silent = await accounts.create_customer(uow.session, TENANT, customer("Quiet Inn", auto_email="off"))
    follows = await add_contract(units, tenant["standard"], [{"description": "S", "amount": Decimal("10")}])
    edi = await add_contract(units, with_edi.id, [{"description": "S", "amount": Decimal("20")}])
    await add_contract(units, silent.id, [{"description": "S", "amount": Decimal("30")}])
    await bill(units)
    by_contract = {row.contract_id: row for row in await invoices(units)}
    assert len(by_contract) == 3
    assert set(await mailings(units)) == {by_contract[follows].id, by_contract[edi].id}

    assert await mailing.send_pending(units, settings) == 2
    received = {message["Message-ID"]: message for message in box.messages}
    first = received[f"<{by_contract[follows].id}@tarifa.invalid>"]
    assert first["To"] == "billing@hotel-du-lac.example"
    assert [part.get_filename() for part in first.iter_attachments()] == [f"{by_contract[follows].number}.pdf"]
    second = received[f"<{by_contract[edi].id}@tarifa.invalid>"]
    attachments = {part.get_filename(): part for part in second.iter_attachments()}
    assert set(attachments) == {f"{by_contract[edi].number}.pdf", f"{by_contract[edi].number}.xml"}
    assert attachments[f"{by_contract[edi].number}.xml"].get_content().decode() == by_contract[edi].ubl

    # a later pass (a restarted service) and a repeated run send nothing again
    assert await mailing.send_pending(units, settings) == 0
    assert (await bill(units)).issued == []
    assert await mailing.send_pending(units, settings) == 0
    assert len(box.messages) == 2
    assert {row.status for row in (await mailings(units)).values()} == {"sent"}

    async with units() as uow:
        credit = await handlers.credit_invoice(
            SqlStore(uow), TENANT, by_contract[follows].id, issue_date=ISSUED_ON, new_id=accounts.new_id
        )
    assert await mailing.send_pending(units, settings) == 1
    assert box.messages[-1]["Subject"].startswith(f"Credit note {credit.number}")


async def test_an_email_cut_off_mid_conversation_is_never_resent_and_a_mail_server_away_is_retried_then_alerted(
    units: UnitOfWorkFactory, tenant: dict[str, str], smtp: tuple[Mailbox, InvoicerSettings]
) -> None:
    box, settings = smtp
    async with units() as uow:
        await accounts.save_profile(uow.session, TENANT, {**PROFILE, "auto_email": "pdf"})
    await add_contract(units, tenant["standard"], [{"description": "S", "amount": Decimal("10")}])
    await add_contract(units, tenant["exempt"], [{"description": "S", "amount": Decimal("10")}])
    await bill(units)
    cut_off, away = sorted(await mailings(units))
    async with units() as uow:  # as a process that died while talking to the server leaves it
        row = await uow.session.get(Mailing, (await mailings(units))[cut_off].id)
        assert row is not None
        row.status, row.attempts, row.claimed_at = "sending", 1, utcnow() - timedelta(minutes=10)
        uow.session.add(row)
    down = settings.model_copy(update={"smtp_port": free_port()})
    assert await mailing.send_pending(units, down) == 0
    rows = await mailings(units)
    assert (rows[cut_off].status, rows[away].status, rows[away].attempts) == ("uncertain", "pending", 1)
    assert "refused or is away" in json.loads(rows[away].log)[0]["outcome"]
    assert await mailing.send_pending(units, down) == 0
    assert (await mailings(units))[away].status == "failed"
    assert await mailing.send_pending(units, settings) == 0
    assert box.messages == []
    async with units() as uow:
        alerted = [
            json.loads(entry.value)["fingerprint"]
            for entry in (await uow.session.exec(select(OutboxEntry))).all()
            if entry.topic == topics.ALERT_EVENTS.name
        ]
    assert sorted(alerted) == sorted(
        [f"invoicer/invoice-email-uncertain/{cut_off}", f"invoicer/invoice-email-failed/{away}"]
    )


async def test_partial_credit_notes_credit_lines_once_or_an_amount_spread_over_vat_and_never_more_than_the_invoice(
    units: UnitOfWorkFactory, tenant: dict[str, str], ubl_validator, edifact_checker
) -> None:
    charges = [
        {"description": "Subscription", "amount": Decimal("42.00")},
        {"description": "Router rental", "amount": Decimal("10.00"), "tax_rate": Decimal("10")},
        {"description": "Handset", "amount": Decimal("33.33"), "recurring": False, "starts_on": date(2026, 10, 3)},
    ]
    await add_contract(units, tenant["standard"], charges)
    await bill(units)
    (invoice,) = await invoices(units)
    assert invoice.net == Decimal("85.33")

    async def credit(**what: object) -> handlers.Issued:
        async with units() as uow:
            return await handlers.credit_invoice(
                SqlStore(uow), TENANT, invoice.id, issue_date=date(2026, 11, 5), new_id=accounts.new_id, **what
            )

    handset = next(n for n, line in enumerate(json.loads(invoice.lines), 1) if line["description"] == "Handset")
    by_lines = await credit(lines=[handset])
    assert (by_lines.number, by_lines.net, by_lines.tax, by_lines.credited_lines) == (
        "CN-000001",
        Decimal("33.33"),
        Decimal("6.67"),
        (handset,),
    )
    with pytest.raises(InvalidInput, match="already been credited"):
        await credit(lines=[handset])
    with pytest.raises(InvalidInput, match="does not exist"):
        await credit(lines=[9])
    # 20.00 of the 52.00 left, in proportion to the bases: 42.00 at 20 % and 10.00 at 10 %
    by_amount = await credit(amount=Decimal("20.00"))
    assert sorted((line.tax.rate, line.net) for line in by_amount.lines) == [
        (Decimal("10"), Decimal("3.85")),
        (Decimal("20"), Decimal("16.15")),
    ]
    assert (by_amount.net, by_amount.tax) == (Decimal("20.00"), Decimal("3.62"))
    with pytest.raises(InvalidInput, match="more than what remains"):
        await credit(amount=Decimal("32.01"))
    with pytest.raises(Conflict, match="credit its remaining lines or an amount"):
        await credit()
    rest = await credit(amount=Decimal("32.00"))
    assert rest.number == "CN-000003"
    rows = {row.number: row for row in await invoices(units)}
    assert rows["F-000001"].net == Decimal("85.33")  # the invoice itself never changes
    for number in ("CN-000001", "CN-000002", "CN-000003"):
        assert rows[number].credited_invoice_id == invoice.id
        assert ubl_validator.errors(rows[number].ubl.encode()) == [], number
        assert "BillingReference" in rows[number].ubl
        assert f"BGM+381+{number}+9'" in rows[number].edifact
        assert "RFF+IV:F-000001'" in rows[number].edifact
        assert edifact_checker.errors(rows[number].edifact) == [], number
    assert sum((rows[n].net for n in ("CN-000001", "CN-000002", "CN-000003")), Decimal(0)) == invoice.net


async def test_a_customer_with_its_own_key_gets_pushes_signed_with_it_and_the_key_is_never_shown(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    import httpx
    from invoicer_erp_endpoint import ErpEndpoint, running
    from pydantic import SecretStr

    from tarifa_invoicer.adapters.delivery import deliver_pending
    from tarifa_invoicer.entrypoints.api import customer_out

    own_key = "a-customer-key-of-at-least-32-characters"
    settings = InvoicerSettings(database_url="sqlite+aiosqlite://", edi_signing_secret="the-service-key")
    async with running(ErpEndpoint(secret=own_key)) as erp:
        async with units() as uow:
            keyed = await accounts.create_customer(
                uow.session,
                TENANT,
                customer("Keyed", delivery_endpoint=erp.url, edi_signing_key=SecretStr(own_key)),
            )
            shown = customer_out(keyed)
        await add_contract(units, keyed.id, [{"description": "Subscription", "amount": Decimal("10")}])
        await bill(units)
        async with httpx.AsyncClient() as client:
            assert await deliver_pending(units, settings, client) == 1
    (invoice,) = await invoices(units)
    assert erp.received == {invoice.id: invoice.ubl.encode()}
    assert (shown.edi_signing_key, shown.edi_signing_key_set) == (None, True)
    assert own_key not in shown.model_dump_json()


# --- the run waits for the invoicer to catch up with cdr.rated (real broker) -------------------------


class WatchedBacklog(KafkaRatedCallBacklog):
    """The real backlog, also telling the test where the topic ended and the group stood when the run began."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.began = asyncio.Event()
        self.lag_at_start: dict[int, int] = {}

    async def ends(self) -> dict[int, int]:
        ends = await super().ends()
        self.lag_at_start = behind(ends, await self.stored())
        self.began.set()
        return ends


class InvoicerConsumer:
    """The invoicer's own consumer of `cdr.rated` (bootstrap's subscription) in a group of the test's."""

    def __init__(self, broker: EmbeddedBroker, units: UnitOfWorkFactory, publisher: Publisher, group: str) -> None:
        self.broker, self.units, self.publisher, self.group = broker, units, publisher, group
        self._loop: asyncio.Task[None] | None = None
        self._consumer: EventConsumer | None = None

    async def start(self) -> None:
        self._consumer = EventConsumer(
            subscriptions(self.group)[0],
            self.units,
            self.publisher,
            bootstrap_servers=self.broker.bootstrap_servers,
            client_id=self.group,
            session_timeout_ms=3000,
            rebalance_timeout_ms=3000,
        )
        await self._consumer.start()
        self._loop = asyncio.create_task(self._consumer.run())

    async def stop(self) -> None:
        if self._consumer is not None and self._loop is not None:
            self._consumer.stop()
            await self._loop
        self._consumer = self._loop = None

    async def catch_up(self) -> None:
        """Run until the group has stored everything on the topic so far, then stop."""
        await self.start()

        async def caught_up() -> None:
            backlog = KafkaRatedCallBacklog(self.broker.bootstrap_servers, group=self.group)
            try:
                assert behind(await backlog.ends(), await backlog.stored()) == {}
            finally:
                await backlog.close()

        await eventually(caught_up, timeout=60, interval=0.25)
        await self.stop()


@pytest_asyncio.fixture
async def publisher(broker: EmbeddedBroker) -> AsyncIterator[Publisher]:
    await ensure_topics(broker.bootstrap_servers)
    instance = Publisher(broker.bootstrap_servers, "test-rater")
    await instance.start()
    yield instance
    await instance.stop()


async def rated_calls_in_flight(
    broker: EmbeddedBroker, units: UnitOfWorkFactory, publisher: Publisher, customer_id: str
) -> InvoicerConsumer:
    """A contract, an invoicer consumer caught up then stopped, and two calls of the contract rated after."""
    line = unique("ext")
    await add_contract(units, customer_id, [], lines=[line])
    consumer = InvoicerConsumer(broker, units, publisher, unique("invoicer"))
    await consumer.catch_up()
    for amount in ("0.35", "1.20"):
        await publisher.publish(rated(unique("call"), line, amount), topics.CDR_RATED, key=line)
    return consumer


async def test_a_run_started_with_rated_calls_in_flight_waits_for_the_invoicer_and_bills_them(
    broker: EmbeddedBroker, units: UnitOfWorkFactory, tenant: dict[str, str], publisher: Publisher
) -> None:
    consumer = await rated_calls_in_flight(broker, units, publisher, tenant["exempt"])
    backlog = WatchedBacklog(broker.bootstrap_servers, group=consumer.group, wait_seconds=120)
    run = asyncio.create_task(bill(units, backlog=backlog))
    await asyncio.wait_for(backlog.began.wait(), 30)
    assert sum(backlog.lag_at_start.values()) == 2  # both calls were still on their way when the run began
    await consumer.start()
    try:
        report = await asyncio.wait_for(run, 120)
    finally:
        await consumer.stop()
    assert [f for f in report.findings if f.check == "rated_calls_caught_up"] == []
    (invoice,) = await invoices(units)
    assert invoice.total == Decimal("1.55")  # exempt: both calls, no tax


async def test_a_run_whose_invoicer_consumer_is_stopped_holds_and_says_what_to_do(
    broker: EmbeddedBroker, units: UnitOfWorkFactory, tenant: dict[str, str], publisher: Publisher
) -> None:
    consumer = await rated_calls_in_flight(broker, units, publisher, tenant["exempt"])
    backlog = KafkaRatedCallBacklog(broker.bootstrap_servers, group=consumer.group, wait_seconds=1)
    report = await bill(units, hold_on_findings=True, backlog=backlog)
    assert report.held and report.issued == []
    (finding,) = [f for f in report.findings if f.check == "rated_calls_caught_up"]
    assert finding.object_id == "cdr.rated"
    assert "still not stored 2 rated call event(s)" in finding.detail
    assert "check that the invoicer service is running" in finding.detail
    assert await invoices(units) == []


async def test_a_broker_that_cannot_be_reached_is_a_finding_not_a_failed_run(
    units: UnitOfWorkFactory, tenant: dict[str, str]
) -> None:
    await add_contract(units, tenant["standard"], [{"description": "Subscription", "amount": Decimal("10")}])
    where = f"127.0.0.1:{free_port()}"
    report = await bill(units, backlog=KafkaRatedCallBacklog(where, timeout=3))
    (finding,) = [f for f in report.findings if f.check == "rated_calls_caught_up"]
    assert finding.object_id == "broker"
    assert f"could not ask the broker at {where}" in finding.detail
    assert report.issued == ["F-000001"]  # not asked to hold: the person decided to bill anyway
