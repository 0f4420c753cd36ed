"""The notifier as a service: events from the real broker, and its HTTP API with tokens and problem answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio
from sqlmodel import select

from tarifa_common import alerts, auth, contracts, topics
from tarifa_common.broker import EmbeddedBroker
from tarifa_common.events import Event
from tarifa_common.kafka import Publisher
from tarifa_common.runtime import HEARTBEAT_TYPE
from tarifa_common.testing import FAST_CONSUMER_ENV, eventually
from tarifa_notifier.adapters.tables import AlertRow, HeartbeatRow, NotificationRow, RecipientRow, ResponsibilityRow
from tarifa_notifier.config import NotifierSettings
from tarifa_notifier.entrypoints.api import create_app

pytestmark = pytest.mark.broker
SECRET = "n" * 48


@pytest_asyncio.fixture
async def service(broker: EmbeddedBroker, database_url: str, clock) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:  # type: ignore[no-untyped-def]
    settings = NotifierSettings(
        database_url=database_url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        jwt_secret=SECRET,
        consumer_session_timeout_ms=int(FAST_CONSUMER_ENV["TARIFA_CONSUMER_SESSION_TIMEOUT_MS"]),
        consumer_rebalance_timeout_ms=int(FAST_CONSUMER_ENV["TARIFA_CONSUMER_REBALANCE_TIMEOUT_MS"]),
        outbox_poll_seconds=0.1,
    )
    app = create_app(settings, clock=clock, loops=False)
    runtime = app.state.runtime
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifier") as client:
            yield client, runtime
    finally:
        await runtime.stop()


def bearer(*roles: str, tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.mint(SECRET, subject='ana', tenant=tenant, roles=list(roles))}"}


ALERT = {
    "fingerprint": "erp/backup-failed/srv-main",
    "severity": "urgent",
    "source_kind": "client_system",
    "object": {"kind": "service", "id": "srv-main"},
    "summary": "Nightly backup of srv-main failed",
}


async def test_the_api_takes_alerts_once_per_fingerprint_and_serves_the_inbox(service) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    assert (await client.post("/v1/alerts", json=ALERT)).status_code == 401
    assert (await client.post("/v1/alerts", json=ALERT, headers=bearer("viewer"))).status_code == 403
    first = await client.post("/v1/alerts", json=ALERT, headers=bearer("ingest"))
    again = await client.post("/v1/alerts", json=ALERT, headers=bearer("ingest"))
    assert first.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert again.json()["raised_count"] == 2
    other_tenant = await client.get("/v1/alerts", headers=bearer("viewer", tenant="beta"))
    assert other_tenant.json() == []
    inbox = await client.get("/v1/alerts", params={"status": "firing", "severity": "urgent"}, headers=bearer("viewer"))
    assert [a["fingerprint"] for a in inbox.json()] == ["erp/backup-failed/srv-main"]
    alert_id = first.json()["id"]
    acked = await client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=bearer("operator"))
    assert (acked.json()["status"], acked.json()["acknowledged_by"]) == ("acknowledged", "ana")
    resolved = await client.post(f"/v1/alerts/{alert_id}/resolve", headers=bearer("operator"))
    assert resolved.json()["status"] == "resolved"
    again_ack = await client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=bearer("operator"))
    assert again_ack.status_code == 422 and again_ack.json()["errors"][0]["field"] == "status"
    missing = await client.get("/v1/alerts/nope", headers=bearer("viewer"))
    assert missing.status_code == 404


async def test_the_api_manages_recipients_responsibilities_silences_and_the_provider(service) -> None:  # type: ignore[no-untyped-def]
    client, _ = service
    bad = await client.post("/v1/recipients", json={"name": "Ana", "phone": "11 9999"}, headers=bearer("operator"))
    assert bad.status_code == 422 and bad.json()["errors"] == [
        {"field": "phone", "problem": "'11 9999' must be E.164, e.g. +5511999990001"}
    ]
    ana = (
        await client.post(
            "/v1/recipients",
            json={"name": "Ana", "email": "ana@acme.test", "phone": "+5511999990001"},
            headers=bearer("operator"),
        )
    ).json()
    r = await client.post(
        f"/v1/recipients/{ana['id']}/responsibilities",
        json={"object_kind": "group", "object_id": "critical"},
        headers=bearer("operator"),
    )
    assert r.status_code == 201
    await client.post(
        "/v1/object-groups/critical/members",
        json={"object_kind": "source", "object_id": "pbx-hq"},
        headers=bearer("operator"),
    )
    listed = await client.get(f"/v1/recipients/{ana['id']}/responsibilities", headers=bearer("viewer"))
    assert listed.json() == [{"object_kind": "group", "object_id": "critical", "recipient_id": ana["id"]}]
    bad_silence = await client.post(
        "/v1/silences",
        json={"matchers": [{"label": "object_id", "op": "=~", "value": "("}], "ends_at": "2026-11-22T05:00:00Z"},
        headers=bearer("operator"),
    )
    assert bad_silence.status_code == 422 and bad_silence.json()["errors"][0]["field"] == "matchers.value"
    silence = await client.post(
        "/v1/silences",
        json={
            "matchers": [{"label": "object_id", "op": "=", "value": "pbx-hq"}],
            "ends_at": "2026-11-22T05:00:00Z",
            "comment": "upgrade",
        },
        headers=bearer("operator"),
    )
    assert silence.status_code == 201 and silence.json()["starts_at"] == "2026-11-22T03:00:00Z"
    active = await client.get("/v1/silences", params={"active": True}, headers=bearer("viewer"))
    assert [s["id"] for s in active.json()] == [silence.json()["id"]]
    await client.delete(f"/v1/silences/{silence.json()['id']}", headers=bearer("operator"))
    assert (await client.get("/v1/silences", params={"active": True}, headers=bearer("viewer"))).json() == []
    assert (
        await client.put("/v1/sms-provider", json={"provider": "pigeon"}, headers=bearer("operator"))
    ).status_code == 422
    await client.put("/v1/sms-provider", json={"provider": "http"}, headers=bearer("operator"))
    assert (await client.get("/v1/sms-provider", headers=bearer("viewer"))).json() == {"provider": "http"}
    assert (await client.get("/v1/notifications", headers=bearer("viewer"))).json() == []
    bad_cron = await client.post(
        "/v1/report-schedules",
        json={"name": "Daily", "cron": "7 * *", "recipients": ["ops@acme.test"]},
        headers=bearer("operator"),
    )
    assert bad_cron.status_code == 422 and bad_cron.json()["errors"][0]["field"] == "cron"
    report = await client.post(
        "/v1/report-schedules",
        json={"name": "Daily", "cron": "0 7 * * *", "time_zone": "America/Sao_Paulo", "recipients": ["ops@acme.test"]},
        headers=bearer("operator"),
    )
    assert report.status_code == 201 and report.json()["next_run_at"] == "2026-11-22T10:00:00Z"
    no_such_file = await client.post(
        "/v1/report-schedules",
        json={
            "name": "Invoicing",
            "cron": "0 8 5 * *",
            "recipients": ["cfo@acme.test"],
            "kind": "invoicing",
            "format": "csv",
        },
        headers=bearer("operator"),
    )
    assert no_such_file.status_code == 422
    assert no_such_file.json()["errors"][0]["field"] == "format"
    assert "xlsx, pdf" in no_such_file.json()["errors"][0]["problem"]


async def test_events_from_the_broker_become_alerts_heartbeats_and_customer_messages(
    service, broker: EmbeddedBroker
) -> None:  # type: ignore[no-untyped-def]
    _, runtime = service
    async with runtime.units() as uow:
        uow.session.add(
            RecipientRow(id="fin", tenant="acme", name="Finance", email="finance@customer.test", phone="+5511900000000")
        )
        uow.session.add(
            ResponsibilityRow(tenant="acme", recipient_id="fin", object_kind="customer", object_id="cust-7")
        )
        uow.session.add(ResponsibilityRow(tenant="acme", recipient_id="fin", object_kind="line", object_id="line-9"))
    publisher = Publisher(broker.bootstrap_servers, "notifier-test")
    await publisher.start()
    try:
        raised = alerts.AlertRaised(
            fingerprint="collector/source-silent/pbx-hq",
            severity=alerts.Severity.IMPORTANT,
            object=alerts.AlertObject(kind="source", id="pbx-hq"),
            summary="No call records from pbx-hq for 20 minutes",
        )
        for _ in range(3):
            await publisher.publish(
                alerts.raised("acme", "collector", raised), topics.ALERT_EVENTS, key=raised.fingerprint
            )
        beat = Event(
            type=HEARTBEAT_TYPE,
            source="tarifa/rater",
            tenant="platform",
            data={
                "service": "rater",
                "instance": "r-1",
                "interval_seconds": 10,
                "consumers": {"rater": {"processed": 42, "lag": 3}},
            },
        )
        await publisher.publish(beat, topics.HEARTBEAT, key="rater")
        invoice = contracts.InvoiceIssued(
            tenant="acme",
            invoice_id="inv-1",
            number="A-000123",  # as the invoicer numbers documents: series included
            series="A",
            kind="invoice",
            customer_id="cust-7",
            period_start=date(2026, 10, 1),
            period_end=date(2026, 10, 31),
            issue_date=date(2026, 11, 1),
            due_date=date(2026, 11, 10),
            net=Decimal("100.00"),
            tax=Decimal("18.00"),
            total=Decimal("118.00"),
        )
        invoice_event = Event(
            type=contracts.INVOICE_ISSUED, source="tarifa/invoicer", tenant="acme", data=invoice.model_dump(mode="json")
        )
        await publisher.publish(invoice_event, topics.INVOICE_ISSUED, key="cust-7")
        await publisher.publish(invoice_event, topics.INVOICE_ISSUED, key="cust-7")  # a redelivery
        credit = contracts.CreditLimitExceeded(
            tenant="acme",
            line_id="line-9",
            credit_limit=Decimal("50.000000"),
            spent=Decimal("50.120000"),
            cycle_start=date(2026, 11, 1),
        )
        await publisher.publish(
            Event(
                type=contracts.LINE_CREDIT_EXCEEDED,
                source="tarifa/rater",
                tenant="acme",
                data=credit.model_dump(mode="json"),
            ),
            topics.LINE_USAGE,
            key="line-9",
        )
    finally:
        await publisher.stop()

    async def settled() -> tuple[AlertRow, HeartbeatRow, list[NotificationRow], AlertRow]:
        async with runtime.units() as uow:
            alert = (await uow.session.exec(select(AlertRow).where(AlertRow.fingerprint == raised.fingerprint))).first()
            # The topic is shared with every runtime of the test session (this notifier's own heartbeats too).
            beat_row = (
                await uow.session.exec(
                    select(HeartbeatRow).where(HeartbeatRow.service == "rater", HeartbeatRow.instance == "r-1")
                )
            ).first()
            sent = list((await uow.session.exec(select(NotificationRow))).all())
            credit_alert = (await uow.session.exec(select(AlertRow).where(AlertRow.object_id == "line-9"))).first()
        assert alert is not None and alert.raised_count == 3
        assert beat_row is not None and credit_alert is not None and sent
        return alert, beat_row, sent, credit_alert

    _, beat_row, sent, credit_alert = await eventually(settled, timeout=40)
    assert beat_row.consumers == {"rater": {"processed": 42, "lag": 3, "dead_lettered": 0}}
    assert [(n.channel, n.address, n.subject) for n in sent] == [
        ("email", "finance@customer.test", "Invoice A-000123: 118.00 BRL, due 2026-11-10")
    ]
    assert (credit_alert.severity, credit_alert.summary) == (
        "urgent",
        "Line line-9 spent 50.120000 BRL, over its credit limit of 50.000000",
    )


async def test_what_the_api_created_is_committed_before_the_answer_is_sent(
    broker: EmbeddedBroker, database_url: str, clock
) -> None:  # type: ignore[no-untyped-def]
    """A client that got its 201 may read the recipient at once: the transaction commits before
    the answer starts (FastAPI runs a yield dependency's exit after the response by default)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    settings = NotifierSettings(
        database_url=database_url, kafka_bootstrap_servers=broker.bootstrap_servers, jwt_secret=SECRET
    )
    app = create_app(settings, clock=clock, loops=False)
    runtime = app.state.runtime
    await runtime.start()
    observer = create_async_engine(database_url)
    committed_when_answering: list[int] = []

    async def recipients_in_database() -> int:
        async with observer.connect() as connection:
            rows = await connection.execute(select(RecipientRow.id).where(RecipientRow.tenant == "acme"))
            return len(rows.all())

    async def watched(scope, receive, send):  # type: ignore[no-untyped-def]
        async def send_and_look(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start" and scope.get("method") == "POST":
                committed_when_answering.append(await recipients_in_database())
            await send(message)

        await app(scope, receive, send_and_look)

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=watched), base_url="http://notifier") as client:
            created = await client.post(
                "/v1/recipients", json={"name": "Ana", "email": "ana@acme.test"}, headers=bearer("operator")
            )
        assert created.status_code == 201, created.text
        assert committed_when_answering == [1]
    finally:
        await observer.dispose()
        await runtime.stop()
