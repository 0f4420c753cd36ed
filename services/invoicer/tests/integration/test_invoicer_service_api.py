"""The invoicer as a service: its API, its consumer of cdr.rated and its events, on the real broker."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from pypdf import PdfReader
from sqlmodel import select

from tarifa_common import auth, contracts, topics
from tarifa_common.broker import EmbeddedBroker, free_port
from tarifa_common.events import Event, decode
from tarifa_common.kafka import Publisher
from tarifa_common.testing import eventually, read_all, unique
from tarifa_invoicer.adapters.tables import UsageCall
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.entrypoints.api import create_app

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


class Mailbox:
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd's hook
        self.messages.append(message_from_bytes(envelope.content, policy=default))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest_asyncio.fixture
async def service(
    broker: EmbeddedBroker, database_url: str, fast_consumers: dict[str, str], mailbox: tuple[Mailbox, int]
) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    settings = InvoicerSettings(
        smtp_port=mailbox[1],
        collector_url=f"http://127.0.0.1:{free_port()}",  # no collector runs here: the run says so
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        jwt_secret=SECRET,
        consumer_session_timeout_ms=3000,
        consumer_rebalance_timeout_ms=3000,
    )
    app = create_app(settings)
    runtime = app.state.runtime
    await runtime.start()
    await runtime.publisher.ready.wait()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://invoicer") as client:
        yield client, runtime
    await runtime.stop()


def bearer(tenant: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.mint(SECRET, subject='t', tenant=tenant, roles=list(roles))}"}


async def test_rated_calls_from_the_topic_are_billed_and_the_invoice_is_published_and_downloadable(
    service: tuple[httpx.AsyncClient, object], broker: EmbeddedBroker, mailbox, ubl_validator, edifact_checker
) -> None:
    api, runtime = service
    tenant = unique("tenant")
    admin = bearer(tenant, "admin")
    profile = {
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
    assert (await api.put("/v1/billing-profile", json=profile, headers=admin)).status_code == 200
    bad = await api.post(
        "/v1/customers",
        headers=admin,
        json={"name": "X", "street": "s", "city": "c", "postcode": "1", "country": "FR", "gln": "3012345000010"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "gln"
    created = await api.post(
        "/v1/customers",
        headers=admin,
        json={
            "name": "Hotel du Lac",
            "tax_id": "FR83404833048",
            "street": "5 quai Ouest",
            "city": "Annecy",
            "postcode": "74000",
            "country": "FR",
            "gln": "3012345000017",
            "edi_format": "edifact",
            "emails": ["billing@hotel.example"],
        },
    )
    assert created.status_code == 201, created.text
    contract = (
        await api.post(
            "/v1/contracts",
            headers=admin,
            json={"customer_id": created.json()["id"], "due_day": 10, "starts_on": "2026-10-01"},
        )
    ).json()
    await api.post(
        f"/v1/contracts/{contract['id']}/lines", headers=admin, json={"line_id": "ext-201", "assigned_on": "2026-10-01"}
    )
    await api.post(
        f"/v1/contracts/{contract['id']}/charges",
        headers=admin,
        json={
            "description": "Line rental",
            "amount": "9.90",
            "recurring": True,
            "starts_on": "2026-10-01",
            "line_id": "ext-201",
        },
    )
    blocked = await api.post(
        f"/v1/contracts/{contract['id']}/status", headers=admin, json={"status": "blocked_manually"}
    )
    assert blocked.json()["status"] == "blocked_manually"
    refused = await api.post(f"/v1/contracts/{contract['id']}/status", headers=admin, json={"status": "active"})
    assert refused.status_code == 409

    publisher = Publisher(broker.bootstrap_servers, "test-rater")
    await publisher.start()
    try:
        for index, amount in enumerate(["0.35", "1.20"]):
            call = contracts.RatedCall(
                tenant=tenant,
                record_id=f"{tenant}-{index}",
                version=1,
                source_id="pbx",
                call_id=str(index),
                started_at=datetime(2026, 10, 2, 9, tzinfo=UTC),
                direction=contracts.Direction.OUTBOUND,
                dialled="0612345678",
                call_class="mobile",
                billable_seconds=90,
                charged_seconds=90,
                amount=Decimal(amount),
                extension="ext-201",
                rated_at=datetime(2026, 10, 2, 9, tzinfo=UTC),
            )
            event = Event(
                type=contracts.CDR_RATED, source="tarifa/rater", tenant=tenant, data=call.model_dump(mode="json")
            )
            await publisher.publish(event, topics.CDR_RATED, key="ext-201")
    finally:
        await publisher.stop()

    async def calls_stored() -> int:
        async with runtime.units() as uow:
            rows = (await uow.session.exec(select(UsageCall).where(UsageCall.tenant == tenant))).all()
        assert len(rows) == 2 and all(row.contract_id == contract["id"] for row in rows)
        return len(rows)

    # Billed at once: the run itself waits until the service's consumer has stored what was rated before it.
    run = (
        await api.post("/v1/billing-runs", headers=admin, json={"period": "2026-10", "issue_date": "2026-11-01"})
    ).json()

    async def finished() -> dict[str, object]:
        body = (await api.get(f"/v1/billing-runs/{run['id']}", headers=bearer(tenant, "viewer"))).json()
        assert body["status"] == "finished", body
        return body

    done = await eventually(finished, timeout=90)
    assert await calls_stored() == 2
    assert (done["issued"], done["done"], done["total"]) == (1, 1, 1)
    assert [c for c in done["checks"] if c["check"] == "rated_calls_caught_up"] == []
    assert [(c["check"], c["object_id"]) for c in done["checks"] if c["check"] == "sources_delivered"] == [
        ("sources_delivered", "collector")
    ]
    (invoice,) = (await api.get("/v1/invoices?period=2026-10", headers=admin)).json()
    # 9.90 + 1.55 of calls = 11.45; 20 % = 2.29
    assert (invoice["number"], invoice["net"], invoice["tax"], invoice["total"]) == (
        "F-000001",
        "11.45",
        "2.29",
        "13.74",
    )
    ubl = await api.get(f"/v1/invoices/{invoice['id']}/ubl", headers=admin)
    assert ubl.headers["content-type"] == "application/xml"
    assert ubl_validator.errors(ubl.content) == []
    edifact = await api.get(f"/v1/invoices/{invoice['id']}/edifact", headers=admin)
    assert edifact_checker.errors(edifact.content.decode("latin-1")) == []
    pdf = await api.get(f"/v1/invoices/{invoice['id']}/pdf", headers=admin)
    assert pdf.headers["content-type"] == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Invoice F-000001" in text and "13.74 EUR" in text
    assert "Call detail (2 calls)" in text and "0612345678" in text and "1:30" in text
    sent = await api.post(f"/v1/invoices/{invoice['id']}/email", headers=admin, json={"with_edi": "edifact"})
    assert sent.json() == {"sent_to": ["billing@hotel.example"], "attachments": ["F-000001.pdf", "F-000001.edi"]}
    (received,) = mailbox[0].messages
    assert received["To"] == "billing@hotel.example"
    attachments = {part.get_filename(): part.get_content() for part in received.iter_attachments()}
    assert attachments["F-000001.pdf"][:5] == b"%PDF-"
    assert edifact_checker.errors(attachments["F-000001.edi"].decode("latin-1")) == []

    async def published() -> tuple[list[Event], list[Event]]:
        issued = [
            decode(r.headers, r.key, r.value)
            for r in await read_all(broker.bootstrap_servers, topics.INVOICE_ISSUED.name, 10_000, timeout=3)
        ]
        statuses = [
            decode(r.headers, r.key, r.value)
            for r in await read_all(broker.bootstrap_servers, topics.CONTRACT_STATUS.name, 10_000, timeout=3)
        ]
        issued, statuses = [e for e in issued if e.tenant == tenant], [e for e in statuses if e.tenant == tenant]
        assert len(issued) == 1 and len(statuses) == 2
        return issued, statuses

    issued, statuses = await eventually(published, timeout=30)
    assert issued[0].type == contracts.INVOICE_ISSUED
    announced = contracts.InvoiceIssued.model_validate(issued[0].data)
    assert (announced.number, announced.total, announced.links["ubl"]) == (
        "F-000001",
        Decimal("13.74"),
        f"/v1/invoices/{invoice['id']}/ubl",
    )
    assert [contracts.ContractStatusChanged.model_validate(e.data).status for e in statuses] == [
        contracts.ContractStatus.ACTIVE,
        contracts.ContractStatus.BLOCKED_MANUALLY,
    ]

    credit_url = f"/v1/invoices/{invoice['id']}/credit-note?issue_date=2026-11-03"
    too_much = await api.post(credit_url, headers=admin, json={"amount": "11.46"})
    assert (too_much.status_code, too_much.json()["errors"][0]["field"]) == (422, "amount")
    partial = await api.post(credit_url, headers=admin, json={"amount": "1.45"})
    assert partial.status_code == 201, partial.text
    assert (partial.json()["number"], partial.json()["net"], partial.json()["total"]) == ("CN-000001", "1.45", "1.74")
    assert (await api.post(credit_url, headers=admin)).status_code == 409  # in full: no longer, part is credited


async def test_the_api_says_what_to_fix(service: tuple[httpx.AsyncClient, object]) -> None:
    api, _ = service
    tenant = unique("tenant")
    operator = bearer(tenant, "operator")
    no_profile = await api.post("/v1/billing-runs", headers=operator, json={"period": "2026-10"})
    assert no_profile.status_code == 404
    assert "PUT /v1/billing-profile first" in no_profile.json()["detail"]
    bad_month = await api.post("/v1/billing-runs", headers=operator, json={"period": "2026-13"})
    assert (bad_month.status_code, bad_month.json()["errors"][0]["field"]) == (422, "period")
    specific = await api.post(
        "/v1/customers",
        headers=operator,
        json={
            "name": "X",
            "street": "s",
            "city": "c",
            "postcode": "1",
            "country": "FR",
            "tax_treatment": "specific",
            "emails": ["x@example.com"],
        },
    )
    assert (specific.status_code, specific.json()["errors"][0]["field"]) == (422, "tax_rate")
    no_address = await api.post(
        "/v1/customers",
        headers=operator,
        json={"name": "X", "street": "s", "city": "c", "postcode": "1", "country": "FR"},
    )
    assert "Peppol id, a GLN or an e-mail" in no_address.json()["detail"]
    assert (await api.post("/v1/customers", headers=bearer(tenant, "viewer"), json={})).status_code == 403
    assert (await api.get("/v1/invoices/nope", headers=operator)).status_code == 404
    assert (await api.post("/v1/invoices/nope/credit-note", headers=operator)).status_code == 404
    empty = await api.get("/v1/reports/invoices.pdf?period=2026-10", headers=operator)
    assert (empty.status_code, empty.headers["content-type"]) == (200, "application/pdf")
    synthesis = await api.get("/v1/reports/synthesis.xlsx?until=2026-10", headers=operator)
    assert synthesis.content[:2] == b"PK"
    assert (await api.get("/v1/reports/invoices.csv?period=2026-10", headers=operator)).status_code == 422
