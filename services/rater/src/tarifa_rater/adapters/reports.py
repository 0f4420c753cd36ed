"""Rated-call reports: the filtered list, totals by extension, cost centre, class or period, CSV.

Totals are summed in Python over exact Decimals and rounded once per group, half-up, in the
currency (SQLite has no exact decimal sum). Periods are days or months in UTC.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_rater.adapters.tables import CallRow
from tarifa_rater.domain.money import round_money

GROUPS = ("extension", "cost_centre", "call_class", "day", "month")
CSV_FIELDS = (
    "record_id",
    "version",
    "started_at",
    "extension",
    "answered_by",
    "transferred",
    "dialled",
    "called_e164",
    "call_class",
    "destination",
    "billable_seconds",
    "charged_seconds",
    "amount",
    "cost_amount",
    "currency",
    "line_id",
    "customer_id",
    "contract_id",
    "cost_centre",
    "department",
    "plan",
    "rate",
    "band",
    "out_of_class",
)


@dataclass(frozen=True, slots=True)
class CallFilter:
    tenant: str
    start: datetime | None = None
    end: datetime | None = None
    extension: str | None = None
    cost_centre: str | None = None
    call_class: str | None = None
    number: str | None = None
    transferred: bool | None = None
    answered_by: str | None = None
    status: str = "rated"

    def where(self, query: Any) -> Any:
        query = query.where(CallRow.tenant == self.tenant, CallRow.status == self.status)
        if self.start is not None:
            query = query.where(col(CallRow.started_at) >= self.start)
        if self.end is not None:
            query = query.where(col(CallRow.started_at) < self.end)
        if self.extension:
            query = query.where(CallRow.extension == self.extension)
        if self.cost_centre:
            query = query.where(CallRow.cost_centre == self.cost_centre)
        if self.call_class:
            query = query.where(CallRow.call_class == self.call_class)
        if self.number:
            digits = "".join(ch for ch in self.number if ch.isdigit())
            query = query.where(
                sa.or_(col(CallRow.dialled).contains(self.number), col(CallRow.called_e164).contains(digits))
            )
        if self.transferred is not None:
            query = query.where(CallRow.transferred == self.transferred)
        if self.answered_by:
            query = query.where(CallRow.answered_by == self.answered_by)
        return query


async def list_calls(session: AsyncSession, where: CallFilter, limit: int, offset: int) -> list[CallRow]:
    query = where.where(select(CallRow)).order_by(col(CallRow.started_at), col(CallRow.id)).limit(limit).offset(offset)
    return list((await session.exec(query)).all())


async def stream_calls(session: AsyncSession, where: CallFilter, chunk: int = 2000) -> AsyncIterator[CallRow]:
    after = 0
    while True:
        query = where.where(select(CallRow)).where(col(CallRow.id) > after).order_by(col(CallRow.id)).limit(chunk)
        rows = list((await session.exec(query)).all())
        for row in rows:
            yield row
        if len(rows) < chunk:
            return
        after = rows[-1].id or after


@dataclass(slots=True)
class Total:
    key: str
    currency: str
    calls: int = 0
    billable_seconds: int = 0
    charged_seconds: int = 0
    amount_unrounded: Decimal = Decimal(0)
    cost_unrounded: Decimal = Decimal(0)
    out_of_class: int = 0
    amount: Decimal = field(default=Decimal(0))
    cost: Decimal = field(default=Decimal(0))


def key_of(row: CallRow, group_by: str) -> str:
    if group_by == "day":
        return row.started_at.date().isoformat()
    if group_by == "month":
        return row.started_at.strftime("%Y-%m")
    value = getattr(row, group_by)
    return str(value) if value is not None else "(none)"


async def totals(session: AsyncSession, where: CallFilter, group_by: str) -> list[Total]:
    groups: dict[tuple[str, str], Total] = {}
    async for row in stream_calls(session, where):
        key = key_of(row, group_by)
        total = groups.get((key, row.currency))
        if total is None:
            total = groups[(key, row.currency)] = Total(key, row.currency)
        total.calls += 1
        total.billable_seconds += row.billable_seconds
        total.charged_seconds += row.charged_seconds
        total.amount_unrounded += row.amount or 0
        total.cost_unrounded += row.cost_amount or 0
        total.out_of_class += int(row.out_of_class)
    for total in groups.values():
        total.amount = round_money(total.amount_unrounded, total.currency)
        total.cost = round_money(total.cost_unrounded, total.currency)
    return sorted(groups.values(), key=lambda t: (t.key, t.currency))


async def calls_csv(session: AsyncSession, where: CallFilter) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    async for row in stream_calls(session, where):
        writer.writerow(["" if getattr(row, name) is None else getattr(row, name) for name in CSV_FIELDS])
    return out.getvalue()


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def calls_xlsx(session: AsyncSession, where: CallFilter, group_by: str) -> bytes:
    """The filtered calls and their totals as a workbook: sheet `calls`, sheet `totals by <group>`.

    Amounts are written as numbers (unrounded per call, rounded once per total), so the
    spreadsheet can sum them; the write-only mode streams rows and keeps memory flat.
    """
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("calls")
    sheet.append([*CSV_FIELDS[:2], "started_at (UTC)", *CSV_FIELDS[3:]])
    async for row in stream_calls(session, where):
        values: list[Any] = []
        for name in CSV_FIELDS:
            value = getattr(row, name)
            if isinstance(value, datetime):
                value = value.replace(tzinfo=None)  # Excel has no time zones: UTC, as the header says
            values.append(value)
        sheet.append(values)
    summary = book.create_sheet(f"totals by {group_by}")
    summary.append(
        [group_by, "currency", "calls", "billable_seconds", "charged_seconds", "amount", "cost", "out_of_class"]
    )
    for total in await totals(session, where, group_by):
        summary.append(
            [
                total.key,
                total.currency,
                total.calls,
                total.billable_seconds,
                total.charged_seconds,
                total.amount,
                total.cost,
                total.out_of_class,
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
