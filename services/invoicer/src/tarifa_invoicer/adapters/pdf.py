"""The invoice PDF with its call-detail annex, drawn with reportlab from the invoice as issued."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

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
        story += [PageBreak(), Paragraph(f"Call detail ({len(calls)} calls)", _STYLES["Heading2"]), CallDetail(calls)]
    document.build(story)  # type: ignore[arg-type]
    return buffer.getvalue()


_ROW = 3.6 * mm
_COLUMNS = (("Started (UTC)", 0.0), ("Line", 36 * mm), ("Number", 64 * mm), ("Class", 104 * mm), ("Duration", 134 * mm))


class CallDetail(Flowable):
    """The call-detail annex drawn straight on the canvas: laying out a Table of thousands of rows is slow.

    It splits across pages like a table, with the header repeated on each page.
    """

    def __init__(self, calls: Sequence[UsageCall]) -> None:
        super().__init__()
        self.calls = calls

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        self.width = available_width
        return available_width, _ROW * (len(self.calls) + 1)

    def split(self, available_width: float, available_height: float) -> list[Flowable]:
        fits = int(available_height // _ROW) - 1
        if fits >= len(self.calls):
            return [self]
        if fits < 1:
            return []
        return [CallDetail(self.calls[:fits]), CallDetail(self.calls[fits:])]

    def draw(self) -> None:
        canvas = self.canv
        top = _ROW * len(self.calls)
        canvas.setFont("Helvetica-Bold", 7)
        for title, x in _COLUMNS:
            canvas.drawString(x, top, title)
        canvas.drawRightString(self.width, top, "Amount")
        text = canvas.beginText()
        text.setFont("Helvetica", 7)
        for index, call in enumerate(self.calls, start=1):
            y = top - index * _ROW
            cells = (
                f"{call.started_at:%Y-%m-%d %H:%M:%S}",
                (call.line_id or "")[:18],
                call.dialled[:24],
                call.call_class[:18],
                _duration(call.seconds),
            )
            for (_, x), cell in zip(_COLUMNS, cells, strict=True):
                text.setTextOrigin(x, y)
                text.textOut(cell)
        canvas.drawText(text)
        for index, call in enumerate(self.calls, start=1):
            canvas.drawRightString(self.width, top - index * _ROW, f"{from_micros(call.amount_micros):.4f}")
