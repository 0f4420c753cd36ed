"""XLSX reports of the Comtrafic seed: the table of a month's invoices and the 12-month synthesis per customer."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.worksheet.worksheet import Worksheet
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_invoicer.adapters.tables import Customer, InvoiceRow

MONEY = "#,##0.00"


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


def _first_sheet(workbook: Workbook) -> Worksheet:
    sheet = workbook.worksheets[0]
    assert isinstance(sheet, Worksheet)
    return sheet


def _save(workbook: Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


async def invoice_table(session: AsyncSession, tenant: str, period_start: date) -> bytes:
    """One row per invoice and credit note of the month: the 'Tableau des factures' check."""
    names = await _names(session, tenant)
    rows: Sequence[InvoiceRow] = (
        await session.exec(
            select(InvoiceRow)
            .where(InvoiceRow.tenant == tenant, InvoiceRow.period_start == period_start)
            .order_by(col(InvoiceRow.series), col(InvoiceRow.sequence))
        )
    ).all()
    workbook = Workbook()
    sheet = _first_sheet(workbook)
    sheet.title = f"Invoices {period_start:%Y-%m}"
    sheet.append(["Number", "Kind", "Customer", "Contract", "Issued", "Due", "Net", "Tax", "Total", "Currency"])
    for row in rows:
        sign = -1 if row.kind == "credit_note" else 1
        sheet.append(
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
    last = len(rows) + 1
    sheet.append(["Total", "", "", "", "", "", f"=SUM(G2:G{last})", f"=SUM(H2:H{last})", f"=SUM(I2:I{last})", ""])
    for column in "GHI":
        for cell in sheet[column][1:]:
            cell.number_format = MONEY
    return _save(workbook)


async def twelve_month_synthesis(session: AsyncSession, tenant: str, last_month: date) -> bytes:
    """Net invoiced per customer over the 12 months ending with `last_month`, with a chart.

    The 'Synthèse des factures sur 12 mois' check: a customer out of line with its months stands out.
    """
    months = _months_until(last_month)
    names = await _names(session, tenant)
    rows = (
        await session.exec(
            select(InvoiceRow).where(
                InvoiceRow.tenant == tenant,
                col(InvoiceRow.period_start) >= months[0],
                col(InvoiceRow.period_start) <= months[-1],
            )
        )
    ).all()
    totals: dict[str, dict[date, Decimal]] = {}
    for row in rows:
        sign = -1 if row.kind == "credit_note" else 1
        per_month = totals.setdefault(row.customer_id, {})
        per_month[row.period_start] = per_month.get(row.period_start, Decimal(0)) + sign * row.net
    workbook = Workbook()
    sheet = _first_sheet(workbook)
    sheet.title = "12 months"
    sheet.append(["Customer", *[f"{month:%Y-%m}" for month in months], "Total"])
    for customer_id in sorted(totals, key=lambda c: names.get(c, c)):
        values = [totals[customer_id].get(month, Decimal(0)) for month in months]
        sheet.append([names.get(customer_id, customer_id), *values, sum(values, Decimal(0))])
    for row_cells in sheet.iter_rows(min_row=2, min_col=2):
        for cell in row_cells:
            cell.number_format = MONEY
    if totals:
        chart = BarChart()
        chart.type = "col"
        chart.grouping = "stacked"
        chart.overlap = 100
        chart.title = "Net invoiced per month"
        data = Reference(sheet, min_col=1, max_col=13, min_row=2, max_row=len(totals) + 1)
        chart.add_data(data, from_rows=True, titles_from_data=True)
        chart.set_categories(Reference(sheet, min_col=2, max_col=13, min_row=1, max_row=1))
        sheet.add_chart(chart, f"A{len(totals) + 4}")
    return _save(workbook)
