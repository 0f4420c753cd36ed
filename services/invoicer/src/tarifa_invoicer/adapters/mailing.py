"""Sends the e-mails queued when invoices are issued (the mail adapter), each at most once, even across restarts.

A pending mailing is claimed with one conditional UPDATE (`pending` → `sending`, committed)
before the SMTP conversation: two replicas never both send it, and a process that dies while
sending does not send it again when it restarts. What the server did with a mailing left
`sending` cannot be known, so after `email_uncertain_after_seconds` it becomes `uncertain` and an
alert asks a person to check and resend by hand (`POST /invoices/{id}/email`): a customer
receiving its invoice twice is the worse outcome. A server that refuses or is away leaves the
mailing `pending` for the next pass, until `email_max_attempts`, then `failed` with an alert.
Every message carries `Message-ID: <invoice id@sender's domain>`, so a copy is recognisable.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from tarifa_common import alerts, topics
from tarifa_common.errors import InvalidInput, Unavailable
from tarifa_common.events import utcnow
from tarifa_common.runtime import ServiceRuntime
from tarifa_common.unit_of_work import UnitOfWork, UnitOfWorkFactory
from tarifa_invoicer.adapters import mail
from tarifa_invoicer.adapters.store import SqlStore
from tarifa_invoicer.adapters.tables import Mailing
from tarifa_invoicer.config import InvoicerSettings

log = logging.getLogger(__name__)


def _append(row: Mailing, outcome: str) -> None:
    row.log = json.dumps([*json.loads(row.log), {"at": utcnow().isoformat(), "outcome": outcome}])


def _alert(uow: UnitOfWork, row: Mailing, summary: str) -> None:
    alert = alerts.AlertRaised(
        fingerprint=f"invoicer/invoice-email-{row.status}/{row.invoice_id}",
        severity=alerts.Severity.IMPORTANT,
        object=alerts.AlertObject(kind="invoice", id=row.invoice_id),
        summary=summary,
        details={"attempts": row.attempts, "recipients": json.loads(row.recipients)},
    )
    uow.emit(alerts.raised(row.tenant, "invoicer", alert), topics.ALERT_EVENTS, key=alert.fingerprint)


async def _claim(units: UnitOfWorkFactory, mailing_id: str) -> bool:
    async with units() as uow:
        claimed = await (await uow.session.connection()).execute(
            sa.update(Mailing)
            .where(col(Mailing.id) == mailing_id, col(Mailing.status) == "pending")
            .values(status="sending", claimed_at=utcnow(), attempts=col(Mailing.attempts) + 1)
        )
        return bool(claimed.rowcount == 1)


async def _settle_stale(units: UnitOfWorkFactory, settings: InvoicerSettings) -> None:
    """Mailings left `sending` (the process died mid-conversation) become `uncertain`, never re-sent."""
    stale_before = utcnow() - timedelta(seconds=settings.email_uncertain_after_seconds)
    async with units() as uow:
        rows = (
            await uow.session.exec(
                select(Mailing).where(Mailing.status == "sending", col(Mailing.claimed_at) < stale_before)
            )
        ).all()
        for row in rows:
            row.status = "uncertain"
            _append(row, "the sender stopped during the SMTP conversation; not sent again automatically")
            _alert(
                uow,
                row,
                f"the e-mail of invoice {row.invoice_id} may or may not have been sent: check the mail server's "
                "log, then resend by hand with POST /v1/invoices/{id}/email if it was not",
            )
            uow.session.add(row)


async def send_pending(units: UnitOfWorkFactory, settings: InvoicerSettings, *, limit: int = 50) -> int:
    """One pass: settle stale claims, then claim and send pending mailings; returns how many were sent."""
    await _settle_stale(units, settings)
    async with units() as uow:
        pending = list(
            (
                await uow.session.exec(
                    select(Mailing).where(Mailing.status == "pending").order_by(col(Mailing.created_at)).limit(limit)
                )
            ).all()
        )
    sent = 0
    for mailing in pending:
        if not await _claim(units, mailing.id):
            continue  # another replica took it
        try:
            async with units() as uow:
                store = SqlStore(uow)
                invoice = await store.invoice(mailing.tenant, mailing.invoice_id)
                calls = await store.call_detail(mailing.tenant, mailing.invoice_id)
            recipients = json.loads(mailing.recipients)
            message = await asyncio.to_thread(mail.message, settings, invoice, calls, recipients, mailing.with_edi)
            message["Message-ID"] = f"<{invoice.id}@{settings.smtp_sender.rpartition('@')[2] or 'tarifa.invalid'}>"
            await mail.send(settings, message)
            outcome, ok = f"sent to {', '.join(recipients)}", True
        except (Unavailable, InvalidInput) as error:
            outcome, ok = str(error), False
        async with units() as uow:
            row = await uow.session.get(Mailing, mailing.id)
            if row is None:
                continue
            _append(row, outcome)
            if ok:
                row.status, row.sent_at = "sent", utcnow()
                sent += 1
            elif row.attempts >= settings.email_max_attempts:
                row.status = "failed"
                _alert(uow, row, f"the e-mail of invoice {row.invoice_id} could not be sent: {outcome}")
            else:
                row.status = "pending"
            uow.session.add(row)
    return sent


async def mailing_loop(runtime: ServiceRuntime) -> None:
    """Background task: send the e-mails of issued invoices every `email_poll_seconds`."""
    settings = runtime.settings
    assert isinstance(settings, InvoicerSettings)
    while True:
        try:
            await send_pending(runtime.units, settings)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("invoice e-mail pass failed; trying again")
        await asyncio.sleep(settings.email_poll_seconds)
