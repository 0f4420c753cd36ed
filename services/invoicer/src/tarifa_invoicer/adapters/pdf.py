"""The invoice PDF with its call-detail annex, drawn with reportlab from the invoice as issued."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from tarifa_invoicer.adapters.tables import UsageCall, from_micros
from tarifa_invoicer.domain.documents import Party
from tarifa_invoicer.domain.invoice import InvoiceKind, compute_totals
from tarifa_invoicer.handlers import Issued

_STYLES = getSampleStyleSheet()
_GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("ALIGN", (-1, 0), (-1, -1), "RIGHT"),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f2f2f2")]),
    ]
)


def _party(title: str, party: Party) -> Paragraph:
    lines = [f"<b>{title}</b>", party.name, party.street, f"{party.postcode} {party.city}", party.country]
    if party.vat_id:
        lines.append(f"VAT {party.vat_id}")
    return Paragraph("<br/>".join(lines), _STYLES["Normal"])


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _duration(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def render(invoice: Issued, calls: Sequence[UsageCall]) -> bytes:
    """A4 PDF: parties, lines, tax per rate, totals; then every billed call (the call-detail annex)."""
    buffer = io.BytesIO()
    title = "Credit note" if invoice.kind is InvoiceKind.CREDIT_NOTE else "Invoice"
    document = SimpleDocTemplate(
        buffer, pagesize=A4, title=f"{title} {invoice.number}", leftMargin=15 * mm, rightMargin=15 * mm
    )
    currency = invoice.currency
    story: list[object] = [
        Paragraph(f"{title} {invoice.number}", _STYLES["Title"]),
        Table([[_party("From", invoice.seller), _party("To", invoice.buyer)]], colWidths=[90 * mm, 90 * mm]),
        Spacer(0, 6 * mm),
        Paragraph(
            f"Issued {invoice.issue_date:%Y-%m-%d} · due {invoice.due_date:%Y-%m-%d} · "
            f"period {invoice.period.start:%Y-%m-%d} to {invoice.period.end:%Y-%m-%d} · contract {invoice.contract_id}",
            _STYLES["Normal"],
        ),
        Spacer(0, 4 * mm),
    ]
    rows: list[list[str]] = [["Description", "Qty", "Tax", "Amount"]]
    rows += [
        [
            line.description,
            f"{line.quantity:f}",
            f"{line.tax.category.value} {line.tax.rate.normalize():f}%",
            _money(line.net, currency),
        ]
        for line in invoice.lines
    ]
    story.append(Table(rows, colWidths=[110 * mm, 15 * mm, 20 * mm, 35 * mm], style=_GRID, repeatRows=1))
    totals = compute_totals(invoice.lines)
    summary: list[list[str]] = [["Tax", "Taxable", "Tax amount", ""]]
    summary += [
        [
            f"{s.tax.category.value} {s.tax.rate.normalize():f}%",
            _money(s.taxable, currency),
            _money(s.amount, currency),
            "",
        ]
        for s in totals.subtotals
    ]
    summary += [
        ["Net", "", "", _money(invoice.net, currency)],
        ["Tax", "", "", _money(invoice.tax, currency)],
        ["Total", "", "", _money(invoice.total, currency)],
    ]
    story += [Spacer(0, 4 * mm), Table(summary, colWidths=[40 * mm, 50 * mm, 50 * mm, 40 * mm], style=_GRID)]
    if calls:
        story += [PageBreak(), Paragraph(f"Call detail ({len(calls)} calls)", _STYLES["Heading2"])]
        detail: list[list[str]] = [["Started (UTC)", "Line", "Number", "Class", "Duration", "Amount"]]
        detail += [
            [
                f"{call.started_at:%Y-%m-%d %H:%M:%S}",
                call.line_id or "",
                call.dialled,
                call.call_class,
                _duration(call.seconds),
                f"{from_micros(call.amount_micros):.4f}",
            ]
            for call in calls
        ]
        widths = [35 * mm, 28 * mm, 40 * mm, 30 * mm, 20 * mm, 27 * mm]
        story.append(Table(detail, colWidths=widths, style=_GRID, repeatRows=1))
    document.build(story)  # type: ignore[arg-type]
    return buffer.getvalue()
