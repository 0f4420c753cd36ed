"""Pushes issued EDI documents to customers' endpoints: signed (HMAC), idempotent, retried, logged.

Each pending delivery is POSTed with the document as body, `Idempotency-Key: <invoice id>` (a
retry after a lost answer is the same delivery to the receiver) and `X-Tarifa-Signature`, keyed
by the customer's own key if it has one, else the service's. A pass
retries a failing endpoint a few times with tenacity; a delivery that still fails stays pending
for the next pass until `delivery_max_attempts` passes, then is marked failed and an alert raised.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
from sqlmodel import col, select
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from tarifa_common import alerts, topics
from tarifa_common.events import utcnow
from tarifa_common.runtime import ServiceRuntime
from tarifa_common.unit_of_work import UnitOfWorkFactory
from tarifa_invoicer.adapters.tables import Customer, Delivery, InvoiceRow
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.domain.delivery import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign

log = logging.getLogger(__name__)
CONTENT_TYPES = {"ubl": "application/xml", "edifact": "application/EDIFACT"}


class DeliveryRefused(Exception):
    """The endpoint answered with an error status worth retrying (5xx, 429)."""


async def _post(client: httpx.AsyncClient, delivery: Delivery, body: bytes, secret: str) -> int:
    headers = {
        "Content-Type": CONTENT_TYPES[delivery.edi_format],
        IDEMPOTENCY_HEADER: delivery.invoice_id,
        SIGNATURE_HEADER: sign(secret, body),
    }
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.2, max=2),
        retry=retry_if_exception_type((httpx.TransportError, DeliveryRefused)),
        reraise=True,
    ):
        with attempt:
            answer = await client.post(delivery.endpoint, content=body, headers=headers)
            if answer.status_code >= 500 or answer.status_code == 429:
                raise DeliveryRefused(f"HTTP {answer.status_code}")
            return answer.status_code
    raise AssertionError("unreachable")  # pragma: no cover


async def deliver_pending(
    units: UnitOfWorkFactory, settings: InvoicerSettings, client: httpx.AsyncClient, *, limit: int = 50
) -> int:
    """One pass over pending deliveries; returns how many were delivered."""
    async with units() as uow:
        pending = list(
            (
                await uow.session.exec(
                    select(Delivery).where(Delivery.status == "pending").order_by(col(Delivery.created_at)).limit(limit)
                )
            ).all()
        )
    delivered = 0
    secret = settings.edi_signing_secret.get_secret_value()
    for delivery in pending:
        async with units() as uow:
            invoice = await uow.session.get(InvoiceRow, delivery.invoice_id)
            customer = await uow.session.get(Customer, invoice.customer_id) if invoice is not None else None
        if invoice is None:
            continue
        key = customer.edi_signing_key if customer is not None and customer.edi_signing_key else secret
        body = (invoice.ubl if delivery.edi_format == "ubl" else invoice.edifact).encode(
            "utf-8" if delivery.edi_format == "ubl" else "latin-1", errors="replace"
        )
        try:
            status = await _post(client, delivery, body, key)
            outcome = f"HTTP {status}"
            ok = 200 <= status < 300
        except (httpx.HTTPError, DeliveryRefused) as error:
            outcome, ok = f"{type(error).__name__}: {error}", False
        async with units() as uow:
            row = await uow.session.get(Delivery, delivery.id)
            if row is None or row.status != "pending":
                continue
            row.attempts += 1
            row.log = json.dumps([*json.loads(row.log), {"at": utcnow().isoformat(), "outcome": outcome}])
            if ok:
                row.status, row.delivered_at = "delivered", utcnow()
                delivered += 1
            elif row.attempts >= settings.delivery_max_attempts:
                row.status = "failed"
                alert = alerts.AlertRaised(
                    fingerprint=f"invoicer/edi-delivery-failed/{row.invoice_id}",
                    severity=alerts.Severity.IMPORTANT,
                    object=alerts.AlertObject(kind="invoice", id=row.invoice_id),
                    summary=f"EDI for invoice {invoice.number} could not be delivered to {row.endpoint}: {outcome}",
                    details={"attempts": row.attempts},
                )
                uow.emit(alerts.raised(row.tenant, "invoicer", alert), topics.ALERT_EVENTS, key=alert.fingerprint)
            uow.session.add(row)
    return delivered


async def delivery_loop(runtime: ServiceRuntime) -> None:
    """Background task: push pending EDI documents every `delivery_poll_seconds`."""
    settings = runtime.settings
    assert isinstance(settings, InvoicerSettings)
    async with httpx.AsyncClient(timeout=settings.delivery_timeout_seconds) as client:
        while True:
            try:
                await deliver_pending(runtime.units, settings, client)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("EDI delivery pass failed; trying again")
            await asyncio.sleep(settings.delivery_poll_seconds)


def delivery_rows(rows: list[Delivery]) -> list[dict[str, Any]]:
    return [{**row.model_dump(exclude={"log"}), "log": json.loads(row.log)} for row in rows]
