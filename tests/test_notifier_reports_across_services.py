"""Scheduled reports across services: the notifier reads the real rater's and invoicer's report APIs over HTTP.

The rater and the invoicer run as their own apps under uvicorn on loopback ports, with seeded
data; the notifier calls them with a service token for the schedule's tenant, and e-mails the
result through a real SMTP server (aiosmtpd). A source that is down is retried, raises an alert,
and the report goes out once when it is back, even with a second notifier on the same database.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from openpyxl import load_workbook  # type: ignore[import-untyped]
from pypdf import PdfReader
from sqlmodel import select

from tarifa_common import auth, contracts
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.events import Event, deterministic_id
from tarifa_common.runtime import ServiceRuntime
from tarifa_common.testing import eventually, unique
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.entrypoints.api import create_app as create_invoicer
from tarifa_notifier.adapters.tables import AlertRow, NotificationRow, ReportScheduleRow
from tarifa_notifier.bootstrap import Notifier
from tarifa_notifier.config import NotifierSettings
from tarifa_notifier.entrypoints.api import create_app as create_notifier
from tarifa_rater import handlers as rater_handlers
from tarifa_rater.bootstrap import Rater
from tarifa_rater.config import RaterSettings
from tarifa_rater.entrypoints.api import create_app as create_rater

pytestmark = pytest.mark.broker
SECRET = "x" * 48
PRICE_LIST = """destination,prefixes,call_class,price_per_minute,reduced_price_per_minute,connect_fee,cost_per_minute
Local,,local,0.12,0.06,0.05,0.03
Mobile VC1,,vc1,0.60,0.40,0.05,0.30
Long distance,,long_distance,0.30,,0.05,
"""
SALES_AND_LOBBY = "extension,line_id,cost_centre,allowed_classes\n2001,line-1,sales,\n2002,line-2,lobby,local\n"
# Monday 23 November 2026, 12:00 in São Paulo (UTC-3).
MONDAY_NOON = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
PROFILE = {
    "seller_name": "Tarifa Telecom SAS",
    "seller_vat_id": "FR40123456789",
    "seller_street": "1 rue du Port",
    "seller_city": "Marseille",
    "seller_postcode": "13002",
    "seller_country": "FR",
    "seller_endpoint": "0009:12345678900011",
    "seller_gln": "5790000435975",
    "default_tax_rate": "20",
    "currency": "EUR",
    "series": "F",
    "credit_series": "CN",
    "time_zone": "UTC",
}


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


class Mailbox:
    """aiosmtpd handler keeping every accepted message, parsed, attachments included."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@dataclass
class Served:
    """A service's real app under uvicorn on a loopback port; `stop()` takes it down, `start()` brings a new one up."""

    make_app: Any
    port: int
    app: FastAPI | None = None
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.app = self.make_app()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())

        async def started() -> None:
            assert self._server is not None and self._server.started

        await eventually(started, timeout=60)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None


def bearer(tenant: str, role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.mint(SECRET, subject='tester', tenant=tenant, roles=[role])}"}


def collected(tenant: str, record: str, extension: str, dialled: str, started: datetime, seconds: int) -> Event:
    cdr = contracts.CollectedCdr(
        tenant=tenant,
        source_id="pbx-hq",
        source_kind="avaya_smdr",
        record_id=record,
        call_id=f"call-{record}",
        started_at=started,
        local_start=(started - timedelta(hours=3)).replace(tzinfo=None).isoformat(),
        time_zone="America/Sao_Paulo",
        answered_at=started,
        ended_at=started + timedelta(seconds=seconds),
        duration_seconds=seconds,
        billable_seconds=seconds,
        direction=contracts.Direction.OUTBOUND,
        disposition=contracts.Disposition.ANSWERED,
        caller=extension,
        dialled=dialled,
        extension=extension,
        raw="smdr line",
    )
    return Event(
        type=contracts.CDR_COLLECTED,
        source="tarifa/collector",
        tenant=tenant,
        subject=record,
        id=deterministic_id(tenant, cdr.source_id, record),
        data=cdr.model_dump(mode="json"),
    )


async def seed_rater(rater: Served, tenant: str) -> None:
    """A tariff, a directory with two cost centres, and four calls: three on Monday, one late on Sunday night."""
    async with httpx.AsyncClient(base_url=rater.url, headers=bearer(tenant)) as client:
        answer = await client.put(
            "/v1/tariffs/standard/versions/2026-11-01T00:00:00-03:00",
            content=PRICE_LIST,
            headers={"Content-Type": "text/csv"},
        )
        assert answer.status_code == 200, answer.text
        answer = await client.put("/v1/tariff-assignments/tenant/*", json={"plan_code": "standard"})
        assert answer.status_code == 200, answer.text
        answer = await client.post(
            "/v1/extensions/import", content=SALES_AND_LOBBY, headers={"Content-Type": "text/csv"}
        )
        assert answer.status_code == 200, answer.text
    assert rater.app is not None
    engine: Rater = rater.app.state.rater
    sunday_night = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)  # 23:30 on Sunday in São Paulo: not Monday's
    for event in (
        collected(tenant, "r1", "2001", "33334444", MONDAY_NOON, 61),
        collected(tenant, "r2", "2001", "33334444", MONDAY_NOON + timedelta(minutes=5), 61),
        collected(tenant, "r3", "2002", "987654321", MONDAY_NOON + timedelta(hours=1), 60),
        collected(tenant, "r4", "2001", "33334444", sunday_night, 600),
    ):
        async with engine.runtime.units() as uow:
            await rater_handlers.rate_collected_cdr(event, uow, engine.store(uow), engine.numbering)


async def seed_invoicer(invoicer: Served, tenant: str) -> None:
    """A customer with a 9.90 EUR monthly charge, billed for October 2026: invoice F-000001."""
    async with httpx.AsyncClient(base_url=invoicer.url, headers=bearer(tenant)) as client:
        assert (await client.put("/v1/billing-profile", json=PROFILE)).status_code == 200
        customer = await client.post(
            "/v1/customers",
            json={
                "name": "Hotel du Lac",
                "tax_id": "FR83404833048",
                "street": "5 quai Ouest",
                "city": "Annecy",
                "postcode": "74000",
                "country": "FR",
                "emails": ["billing@hotel.example"],
            },
        )
        assert customer.status_code == 201, customer.text
        contract = await client.post(
            "/v1/contracts", json={"customer_id": customer.json()["id"], "due_day": 10, "starts_on": "2026-10-01"}
        )
        assert contract.status_code == 201, contract.text
        charge = await client.post(
            f"/v1/contracts/{contract.json()['id']}/charges",
            json={"description": "PBX rental", "amount": "9.90", "recurring": True, "starts_on": "2026-10-01"},
        )
        assert charge.status_code < 300, charge.text
        run = await client.post("/v1/billing-runs", json={"period": "2026-10", "issue_date": "2026-11-01"})
        assert run.status_code < 300, run.text

        async def finished() -> None:
            body = (await client.get(f"/v1/billing-runs/{run.json()['id']}")).json()
            assert body["status"] == "finished" and body["issued"] == 1, body

        await eventually(finished, timeout=60)


@dataclass
class Platform:
    tenant: str
    rater: Served
    invoicer: Served
    mailbox: Mailbox
    notifier_settings: NotifierSettings
    clock: Clock
    started: list[ServiceRuntime] = field(default_factory=list)
    apps: dict[int, FastAPI] = field(default_factory=dict)

    async def notifier(self) -> tuple[ServiceRuntime, Notifier]:
        """A notifier instance (each call: another replica, or the same one after a restart)."""
        app = create_notifier(self.notifier_settings, clock=self.clock, loops=False)
        runtime: ServiceRuntime = app.state.runtime
        await runtime.start()
        self.started.append(runtime)
        self.apps[id(runtime)] = app
        return runtime, app.state.notifier

    async def schedule(self, runtime: ServiceRuntime, **body: Any) -> str:
        """Create a report schedule through the notifier's API."""
        transport = httpx.ASGITransport(app=self.apps[id(runtime)])
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
            answer = await client.post("/v1/report-schedules", json=body, headers=bearer(self.tenant, "operator"))
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])


@pytest_asyncio.fixture
async def platform(
    broker: EmbeddedBroker, database_url: str, tmp_path: Path, mailbox: tuple[Mailbox, int], fast_consumers: Any
) -> AsyncIterator[Platform]:
    common: dict[str, Any] = {
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "jwt_secret": SECRET,
        "consumer_session_timeout_ms": 3000,
        "consumer_rebalance_timeout_ms": 3000,
    }
    rater_port, invoicer_port = free_port(), free_port()
    rater = Served(
        lambda: create_rater(
            RaterSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/rater.db", http_port=rater_port, **common)
        ),
        rater_port,
    )
    invoicer = Served(
        lambda: create_invoicer(
            InvoicerSettings(
                database_url=f"sqlite+aiosqlite:///{tmp_path}/invoicer.db", http_port=invoicer_port, **common
            )
        ),
        invoicer_port,
    )
    tenant = unique("hotel")
    await rater.start()
    await invoicer.start()
    await seed_rater(rater, tenant)
    await seed_invoicer(invoicer, tenant)
    settings = NotifierSettings(
        database_url=database_url,
        smtp_host="127.0.0.1",
        smtp_port=mailbox[1],
        smtp_from="reports@tarifa.test",
        rater_url=rater.url,
        invoicer_url=invoicer.url,
        report_attempts=2,
        report_retry_wait_seconds=0.05,
        report_retry_minutes=5,
        send_retry_wait_seconds=0,
        **common,
    )
    platform = Platform(tenant, rater, invoicer, mailbox[0], settings, Clock(datetime(2026, 11, 1, tzinfo=UTC)))
    try:
        yield platform
    finally:
        for runtime in platform.started:
            await runtime.stop()
        await invoicer.stop()
        await rater.stop()


async def logged(runtime: ServiceRuntime, schedule_id: str) -> list[NotificationRow]:
    async with runtime.units() as uow:
        statement = select(NotificationRow).where(NotificationRow.group_key == f"report:{schedule_id}")
        return list((await uow.session.exec(statement)).all())


async def test_yesterdays_calls_by_cost_centre_come_from_the_rater_as_a_table_and_a_workbook(
    platform: Platform,
) -> None:
    runtime, notifier = await platform.notifier()
    platform.clock.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    schedule = await platform.schedule(
        runtime,
        name="Yesterday's calls",
        cron="0 7 * * *",
        time_zone="America/Sao_Paulo",
        recipients=["finance@hotel.test", "it@hotel.test"],
        kind="calls_by_cost_centre",
        format="xlsx",
    )
    platform.clock.now = datetime(2026, 11, 24, 10, 0, 30, tzinfo=UTC)  # Tuesday 07:00:30 in São Paulo
    assert await notifier.reports(runtime) == 2
    assert await notifier.dispatcher.dispatch_once(platform.clock()) == 2
    (sent,) = platform.mailbox.to("finance@hotel.test")
    assert sent["Subject"] == "Yesterday's calls: 3 call(s) on 2026-11-23 by cost centre"
    body = sent.get_body(preferencelist=("plain",))
    assert body is not None
    table = [line.split() for line in body.get_content().splitlines()[2:]]
    # Monday's three calls (Sunday 23:30 is not yesterday's): lobby 0.05 + 0.60; sales 2 x (0.05 + 0.12 x 66/60).
    assert table == [
        ["cost", "centre", "currency", "calls", "duration", "amount"],
        ["-----------", "--------", "-----", "--------", "------"],
        ["lobby", "BRL", "1", "0:01:00", "0.65"],
        ["sales", "BRL", "2", "0:02:02", "0.36"],
        ["TOTAL", "BRL", "3", "0:03:02", "1.01"],
    ]
    (attachment,) = list(sent.iter_attachments())
    assert attachment.get_filename() == "calls-2026-11-23.xlsx"
    workbook = load_workbook(io.BytesIO(attachment.get_content()), read_only=True)
    calls = [row for row in workbook["calls"].iter_rows(values_only=True)][1:]
    assert sorted(row[0] for row in calls) == ["r1", "r2", "r3"]
    assert len(platform.mailbox.to("it@hotel.test")) == 1
    assert await notifier.reports(runtime) == 0  # the slot is done
    assert {n.status for n in await logged(runtime, schedule)} == {"sent"}


async def test_last_months_invoicing_comes_from_the_invoicer_as_a_table_and_its_pdf(platform: Platform) -> None:
    runtime, notifier = await platform.notifier()
    schedule = await platform.schedule(
        runtime,
        name="Invoicing",
        cron="0 8 5 * *",
        time_zone="Europe/Paris",
        recipients=["cfo@hotel.test"],
        kind="invoicing",
        format="pdf",
    )
    platform.clock.now = datetime(2026, 11, 5, 7, 0, 5, tzinfo=UTC)  # 08:00:05 in Paris
    assert await notifier.reports(runtime) == 1
    assert await notifier.dispatcher.dispatch_once(platform.clock()) == 1
    (sent,) = platform.mailbox.to("cfo@hotel.test")
    assert sent["Subject"] == "Invoicing: 1 invoice(s), 0 credit note(s) for 2026-10"
    body = sent.get_body(preferencelist=("plain",))
    assert body is not None
    rows = [line.split() for line in body.get_content().splitlines()[4:]]
    assert [(r[0], r[-4], r[-3], r[-2], r[-1]) for r in rows] == [
        ("F-000001", "EUR", "9.90", "1.98", "11.88"),
        ("TOTAL", "EUR", "9.90", "1.98", "11.88"),
    ]
    (attachment,) = list(sent.iter_attachments())
    assert (attachment.get_filename(), attachment.get_content_type()) == ("invoices-2026-10.pdf", "application/pdf")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(attachment.get_content())).pages)
    assert "F-000001" in text
    assert len(await logged(runtime, schedule)) == 1


async def test_a_report_whose_source_is_down_raises_an_alert_and_is_sent_once_when_it_is_back(
    platform: Platform,
) -> None:
    first, notifier = await platform.notifier()
    schedule = await platform.schedule(
        first,
        name="Invoicing",
        cron="0 8 5 * *",
        time_zone="UTC",
        recipients=["cfo@hotel.test"],
        kind="invoicing",
        format="xlsx",
    )
    failed = f"notifier/report-failed/{schedule}"
    await platform.invoicer.stop()
    platform.clock.now = due = datetime(2026, 11, 5, 8, 0, 5, tzinfo=UTC)
    assert await notifier.reports(first) == 0
    async with first.units() as uow:
        row = await uow.session.get(ReportScheduleRow, schedule)
        alert = (await uow.session.exec(select(AlertRow).where(AlertRow.fingerprint == failed))).one()
    assert row is not None and row.failures == 1 and row.last_error is not None
    assert "invoicer at" in row.last_error and "ConnectError" in row.last_error
    assert row.retry_at is not None and row.retry_at.replace(tzinfo=UTC) == due + timedelta(minutes=5)
    assert (alert.tenant, alert.status, alert.severity, alert.object_kind) == (
        platform.tenant,
        "firing",
        "important",
        "report",
    )
    assert alert.extra_emails == ["cfo@hotel.test"]  # the report's people hear that it is late
    assert await logged(first, schedule) == []

    platform.clock.now = due + timedelta(minutes=2)  # before the retry: not tried
    assert await notifier.reports(first) == 0
    platform.clock.now = due + timedelta(minutes=6)  # still down: second round, the wait doubles
    assert await notifier.reports(first) == 0
    async with first.units() as uow:
        row = await uow.session.get(ReportScheduleRow, schedule)
    assert row is not None and row.failures == 2
    assert row.retry_at is not None and row.retry_at.replace(tzinfo=UTC) == due + timedelta(minutes=16)

    await platform.invoicer.start()  # back; a second notifier (a restart, or a replica) runs beside the first
    second, other = await platform.notifier()
    platform.clock.now = due + timedelta(minutes=16)
    counts = await asyncio.gather(notifier.reports(first), other.reports(second))
    assert sorted(counts) == [0, 1]
    assert await other.reports(second) == 0 and await notifier.reports(first) == 0
    await notifier.dispatcher.dispatch_once(platform.clock())
    await other.dispatcher.dispatch_once(platform.clock())
    (sent,) = platform.mailbox.to("cfo@hotel.test")
    assert sent["Subject"] == "Invoicing: 1 invoice(s), 0 credit note(s) for 2026-10"
    (attachment,) = list(sent.iter_attachments())
    workbook = load_workbook(io.BytesIO(attachment.get_content()), read_only=True)
    assert any("F-000001" in [str(c) for c in row] for row in workbook.worksheets[0].iter_rows(values_only=True))
    async with first.units() as uow:
        row = await uow.session.get(ReportScheduleRow, schedule)
        alert = (await uow.session.exec(select(AlertRow).where(AlertRow.fingerprint == failed))).one()
    assert row is not None and (row.failures, row.retry_at, row.last_error) == (0, None, None)
    assert row.next_run_at.replace(tzinfo=UTC) == datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    assert alert.status == "resolved" and "was sent, late" in alert.summary
    assert [n.status for n in await logged(first, schedule)] == ["sent"]
