"""Reports of the Comtrafic seed, as XLSX and PDF: a month's invoices, the 12-month synthesis per customer."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.worksheet.worksheet import Worksheet
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_invoicer.adapters.tables import Customer, InvoiceRow

MONEY = "#,##0.00"
INVOICE_HEADER = ["Number", "Kind", "Customer", "Contract", "Issued", "Due", "Net", "Tax", "Total", "Currency"]


@dataclass(frozen=True, slots=True)
class Report:
    title: str
    header: list[str]
    rows: list[list[object]]
    money_from: int  # first column holding money


def _months_until(last: date, count: int = 12) -> list[date]:
    months: list[date] = []
    year, month = last.year, last.month
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(months))


async def _names(session: AsyncSession, tenant: str) -> dict[str, str]:
    rows = (await session.exec(select(Customer.id, Customer.name).where(Customer.tenant == tenant))).all()
    return dict(rows)


async def invoice_report(session: AsyncSession, tenant: str, period_start: date) -> Report:
    """One row per invoice and credit note of the month (credit notes negative): the 'Tableau des factures'."""
    names = await _names(session, tenant)
    invoices = (
        await session.exec(
            select(InvoiceRow)
            .where(InvoiceRow.tenant == tenant, InvoiceRow.period_start == period_start)
            .order_by(col(InvoiceRow.series), col(InvoiceRow.sequence))
        )
    ).all()
    rows: list[list[object]] = []
    for row in invoices:
        sign = -1 if row.kind == "credit_note" else 1
        rows.append(
            [
                row.number,
                row.kind,
                names.get(row.customer_id, row.customer_id),
                row.contract_id,
                row.issue_date,
                row.due_date,
                sign * row.net,
                sign * row.tax,
                sign * row.total,
                row.currency,
            ]
        )
    return Report(f"Invoices {period_start:%Y-%m}", INVOICE_HEADER, rows, money_from=6)


async def synthesis_report(session: AsyncSession, tenant: str, last_month: date) -> Report:
    """Net invoiced per customer over the 12 months ending with `last_month`: the 'Synthèse sur 12 mois'.

    A customer out of line with its months stands out (the check the seed asks for before issuing).
    """
    months = _months_until(last_month)
    names = await _names(session, tenant)
    invoices = (
        await session.exec(
            select(InvoiceRow).where(
                InvoiceRow.tenant == tenant,
                col(InvoiceRow.period_start) >= months[0],
                col(InvoiceRow.period_start) <= months[-1],
            )
        )
    ).all()
    totals: dict[str, dict[date, Decimal]] = {}
    for row in invoices:
        sign = -1 if row.kind == "credit_note" else 1
        per_month = totals.setdefault(row.customer_id, {})
        per_month[row.period_start] = per_month.get(row.period_start, Decimal(0)) + sign * row.net
    rows: list[list[object]] = []
    for customer_id in sorted(totals, key=lambda c: names.get(c, c)):
        values = [totals[customer_id].get(month, Decimal(0)) for month in months]
        rows.append([names.get(customer_id, customer_id), *values, sum(values, Decimal(0))])
    header = ["Customer", *[f"{month:%Y-%m}" for month in months], "Total"]
    return Report(f"12 months to {last_month:%Y-%m}", header, rows, money_from=1)


def to_xlsx(report: Report, *, chart: bool = False, total_row: bool = False) -> bytes:
    workbook = Workbook()
    sheet = workbook.worksheets[0]
    assert isinstance(sheet, Worksheet)
    sheet.title = report.title[:31]
    sheet.append(report.header)
    for row in report.rows:
        sheet.append(row)
    last = len(report.rows) + 1
    if total_row:
        letters = [chr(ord("A") + index) for index in range(len(report.header))]
        sheet.append(
            [
                "Total",
                *["" for _ in range(report.money_from - 1)],
                *[f"=SUM({letter}2:{letter}{last})" for letter in letters[report.money_from : report.money_from + 3]],
            ]
        )
    for row_cells in sheet.iter_rows(min_row=2, min_col=report.money_from + 1):
        for cell in row_cells:
            if isinstance(cell.value, Decimal | int | float) or str(cell.value).startswith("=SUM"):
                cell.number_format = MONEY
    if chart and report.rows:
        bars = BarChart()
        bars.type, bars.grouping, bars.overlap, bars.title = "col", "stacked", 100, "Net invoiced per month"
        months = len(report.header) - 2
        bars.add_data(
            Reference(sheet, min_col=1, max_col=months + 1, min_row=2, max_row=last),
            from_rows=True,
            titles_from_data=True,
        )
        bars.set_categories(Reference(sheet, min_col=2, max_col=months + 1, min_row=1, max_row=1))
        sheet.add_chart(bars, f"A{last + 3}")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _cell(value: object) -> str:
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    return str(value)


def to_pdf(report: Report, *, chart: bool = False) -> bytes:
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=landscape(A4), title=report.title, leftMargin=10 * mm, rightMargin=10 * mm
    )
    story: list[object] = [Paragraph(report.title, getSampleStyleSheet()["Title"])]
    if chart and report.rows:
        drawing = Drawing(270 * mm, 70 * mm)
        bars = VerticalBarChart()
        bars.x, bars.y = int(15 * mm), int(10 * mm)
        bars.width, bars.height = int(240 * mm), int(55 * mm)
        bars.data = [[float(value) for value in row[1:-1]] for row in report.rows]  # type: ignore[arg-type]
        bars.categoryAxis.categoryNames = report.header[1:-1]
        bars.categoryAxis.style = "stacked"
        drawing.add(bars)
        story += [drawing, Spacer(0, 5 * mm)]
    table = Table([report.header, *[[_cell(value) for value in row] for row in report.rows]], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", 7),
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                ("ALIGN", (report.money_from, 0), (-1, -1), "RIGHT"),
            ]
        )
    )
    story.append(table)
    document.build(story)  # type: ignore[arg-type]
    return buffer.getvalue()
