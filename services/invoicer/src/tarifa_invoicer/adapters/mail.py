"""Invoices by e-mail: the PDF attached (and the EDI document if asked), sent with aiosmtplib."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage

import aiosmtplib

from tarifa_common.errors import InvalidInput, Unavailable
from tarifa_invoicer.adapters import pdf
from tarifa_invoicer.adapters.tables import UsageCall
from tarifa_invoicer.config import InvoicerSettings
from tarifa_invoicer.domain.invoice import InvoiceKind
from tarifa_invoicer.handlers import Issued


def message(
    settings: InvoicerSettings,
    invoice: Issued,
    calls: Sequence[UsageCall],
    recipients: Sequence[str],
    with_edi: str | None,
) -> EmailMessage:
    if not recipients:
        raise InvalidInput("emails", "the customer has no e-mail address; add one or give `to`")
    title = "Credit note" if invoice.kind is InvoiceKind.CREDIT_NOTE else "Invoice"
    mail = EmailMessage()
    mail["From"] = settings.smtp_sender
    mail["To"] = ", ".join(recipients)
    mail["Subject"] = f"{title} {invoice.number} — {invoice.total} {invoice.currency}"
    mail.set_content(
        f"{title} {invoice.number} for {invoice.period.start:%Y-%m-%d} to {invoice.period.end:%Y-%m-%d}: "
        f"{invoice.total} {invoice.currency}, due {invoice.due_date:%Y-%m-%d}.\n\n{invoice.seller.name}\n"
    )
    mail.add_attachment(
        pdf.render(invoice, calls), maintype="application", subtype="pdf", filename=f"{invoice.number}.pdf"
    )
    if with_edi == "ubl":
        mail.add_attachment(
            invoice.ubl.encode(), maintype="application", subtype="xml", filename=f"{invoice.number}.xml"
        )
    elif with_edi == "edifact":
        mail.add_attachment(
            invoice.edifact.encode("latin-1", errors="replace"),
            maintype="application",
            subtype="EDIFACT",
            filename=f"{invoice.number}.edi",
        )
    return mail


async def send(settings: InvoicerSettings, mail: EmailMessage) -> None:
    try:
        await aiosmtplib.send(
            mail,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            start_tls=settings.smtp_starttls,
            timeout=30,
        )
    except (aiosmtplib.SMTPException, OSError) as error:
        raise Unavailable(
            f"the mail server {settings.smtp_host}:{settings.smtp_port} refused or is away: {error}"
        ) from error
