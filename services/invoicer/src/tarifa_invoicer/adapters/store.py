"""`SqlStore`: the handlers' storage port on SQLModel tables, inside one unit of work."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common import contracts, topics
from tarifa_common.errors import NotFound
from tarifa_common.events import Event, utcnow
from tarifa_common.unit_of_work import UnitOfWork, UnitOfWorkFactory
from tarifa_invoicer.adapters.tables import (
    BillingProfile,
    ChargeRow,
    ContractLine,
    ContractRow,
    Customer,
    Delivery,
    InvoiceRow,
    Mailing,
    NumberSeries,
    UsageCall,
    from_micros,
    to_micros,
)
from tarifa_invoicer.domain.accounts import AutoEmail, ContractTerms, CustomerTerms, EdiFormat, buyer_endpoint
from tarifa_invoicer.domain.documents import Party
from tarifa_invoicer.domain.invoice import (
    Charge,
    ClassUsage,
    InvoiceKind,
    InvoiceLine,
    LineKind,
    Period,
    Tax,
    TaxCategory,
    TaxTreatment,
)
from tarifa_invoicer.handlers import Issued, Seller, Store


def lines_to_json(lines: Sequence[InvoiceLine]) -> str:
    return json.dumps(
        [
            {
                "kind": line.kind.value,
                "description": line.description,
                "amount": str(line.amount),
                "net": str(line.net),
                "tax_category": line.tax.category.value,
                "tax_rate": str(line.tax.rate),
                "quantity": str(line.quantity),
                "calls": line.calls,
                "seconds": line.seconds,
                "call_class": line.call_class,
                "line_id": line.line_id,
            }
            for line in lines
        ]
    )


def lines_from_json(text: str) -> tuple[InvoiceLine, ...]:
    return tuple(
        InvoiceLine(
            kind=LineKind(item["kind"]),
            description=item["description"],
            amount=Decimal(item["amount"]),
            tax=Tax(TaxCategory(item["tax_category"]), Decimal(item["tax_rate"])),
            quantity=Decimal(item["quantity"]),
            calls=item["calls"],
            seconds=item["seconds"],
            call_class=item["call_class"],
            line_id=item["line_id"],
        )
        for item in json.loads(text)
    )


def party_of(customer: Customer) -> Party:
    emails: list[str] = json.loads(customer.emails)
    return Party(
        name=customer.name,
        street=customer.street,
        city=customer.city,
        postcode=customer.postcode,
        country=customer.country,
        vat_id=customer.tax_id,
        endpoint=buyer_endpoint(customer.peppol_id, customer.gln, emails),
        gln=customer.gln,
    )


def customer_terms(customer: Customer) -> CustomerTerms:
    return CustomerTerms(
        id=customer.id,
        name=customer.name,
        billable=customer.billable,
        treatment=TaxTreatment(customer.tax_treatment),
        tax_rate=customer.tax_rate,
        party=party_of(customer),
        edi_format=EdiFormat(customer.edi_format),
        delivery_endpoint=customer.delivery_endpoint,
        emails=tuple(json.loads(customer.emails)),
        auto_email=AutoEmail(customer.auto_email),
    )


def issued_of(row: InvoiceRow) -> Issued:
    parties = json.loads(row.parties)
    return Issued(
        id=row.id,
        number=row.number,
        series=row.series,
        sequence=row.sequence,
        kind=InvoiceKind(row.kind),
        customer_id=row.customer_id,
        contract_id=row.contract_id,
        period=Period(row.period_start, row.period_end),
        issue_date=row.issue_date,
        due_date=row.due_date,
        currency=row.currency,
        net=row.net,
        tax=row.tax,
        total=row.total,
        lines=lines_from_json(row.lines),
        ubl=row.ubl,
        edifact=row.edifact,
        seller=Party(**parties["seller"]),
        buyer=Party(**parties["buyer"]),
        credited_invoice_id=row.credited_invoice_id,
        credited_lines=tuple(json.loads(row.credited_lines)) if row.credited_lines else (),
    )


async def adopt_orphan_calls(session: AsyncSession, tenant: str, contract_id: str, line_id: str) -> None:
    """Unbilled calls of a line that belonged to no contract join the contract the line is assigned to."""
    connection = await session.connection()
    await connection.execute(
        sa.update(UsageCall)
        .where(
            col(UsageCall.tenant) == tenant,
            col(UsageCall.line_id) == line_id,
            col(UsageCall.contract_id).is_(None),
            col(UsageCall.invoice_id).is_(None),
        )
        .values(contract_id=contract_id)
    )


class SqlStore(Store):
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.session = uow.session

    def emit(self, event: Event, topic: topics.Topic, key: str) -> None:
        self.uow.emit(event, topic, key)

    async def _execute(self, statement: Any) -> Any:
        """Run a Core statement on the session's connection (SQLModel's `exec` types only ORM selects)."""
        return await (await self.session.connection()).execute(statement)

    async def _execute_many(self, statement: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a Core statement once per row of parameters, in one executemany."""
        await (await self.session.connection()).execute(statement, list(rows))

    def _insert(self) -> Any:
        bind = self.session.bind
        return postgresql.insert if bind is not None and bind.dialect.name == "postgresql" else sqlite.insert

    async def contract_of_line(self, tenant: str, line_id: str | None, extension: str | None) -> str | None:
        keys = [key for key in (line_id, extension) if key]
        if not keys:
            return None
        result = await self.session.exec(
            select(ContractLine.contract_id).where(
                ContractLine.tenant == tenant, col(ContractLine.line_id).in_(keys), col(ContractLine.ended_on).is_(None)
            )
        )
        return result.first()

    async def record_call(self, call: contracts.RatedCall, contract_id: str | None) -> bool:
        """Keep one row per unbilled call at its latest version; after billing, a re-rate adds a difference row.

        A version at or below one already seen is a duplicate or arrives late: ignored. While the
        call is unbilled, a newer version replaces its row (the difference is counted once, as the
        row holds the new amount). Once billed, the new version's difference to what was billed
        becomes an adjustment row (calls 0) that the next invoice of the contract carries.
        """
        rows = (
            await self.session.exec(
                select(UsageCall).where(UsageCall.tenant == call.tenant, UsageCall.record_id == call.record_id)
            )
        ).all()
        if any(row.version >= call.version for row in rows):
            return False
        billed = [row for row in rows if row.invoice_id is not None]
        unbilled = [row for row in rows if row.invoice_id is None]
        values: dict[str, Any] = {
            "version": call.version,
            "contract_id": contract_id,
            "line_id": call.line_id or call.extension,
            "call_class": call.call_class,
            "dialled": (call.called_e164 or call.dialled)[:64],
            "started_at": call.started_at,
            "calls": 0 if billed else 1,
            "seconds": call.charged_seconds - sum(row.seconds for row in billed),
            "amount_micros": to_micros(call.amount) - sum(row.amount_micros for row in billed),
        }
        if unbilled:
            result = await self.session.exec(
                sa.update(UsageCall)
                .where(col(UsageCall.id) == unbilled[0].id, col(UsageCall.invoice_id).is_(None))
                .values(**values)
            )
            if result.rowcount == 1:
                return True
            raise RuntimeError(f"call {call.record_id} was billed while its re-rate arrived; retrying")
        self.session.add(UsageCall(tenant=call.tenant, record_id=call.record_id, **values))
        return True

    async def attach_line(self, tenant: str, contract_id: str, line_id: str, on: date) -> bool:
        contract = await self.session.get(ContractRow, contract_id)
        if contract is None or contract.tenant != tenant:
            return False
        line = (
            await self.session.exec(
                select(ContractLine).where(ContractLine.tenant == tenant, ContractLine.line_id == line_id)
            )
        ).first()
        if line is None:
            self.session.add(ContractLine(tenant=tenant, contract_id=contract_id, line_id=line_id, assigned_on=on))
            await adopt_orphan_calls(self.session, tenant, contract_id, line_id)
            return True
        if line.contract_id == contract_id and line.ended_on is None:
            return False
        line.contract_id, line.assigned_on, line.ended_on = contract_id, on, None
        self.session.add(line)
        await adopt_orphan_calls(self.session, tenant, contract_id, line_id)
        return True

    async def detach_line(self, tenant: str, line_id: str, on: date) -> bool:
        line = (
            await self.session.exec(
                select(ContractLine).where(ContractLine.tenant == tenant, ContractLine.line_id == line_id)
            )
        ).first()
        if line is None or line.ended_on is not None:
            return False
        line.ended_on = on
        self.session.add(line)
        return True

    async def _contract(self, tenant: str, contract_id: str) -> ContractRow:
        row = await self.session.get(ContractRow, contract_id)
        if row is None or row.tenant != tenant:
            raise NotFound(f"contract {contract_id} not found")
        return row

    async def contract_status(self, tenant: str, contract_id: str) -> tuple[str, contracts.ContractStatus]:
        row = await self._contract(tenant, contract_id)
        return row.customer_id, contracts.ContractStatus(row.status)

    async def set_contract_status(self, tenant: str, contract_id: str, status: contracts.ContractStatus) -> None:
        row = await self._contract(tenant, contract_id)
        row.status = status.value
        if status is contracts.ContractStatus.CANCELLED and row.ends_on is None:
            row.ends_on = utcnow().date()
        self.session.add(row)

    async def seller(self, tenant: str) -> Seller:
        profile = await self.session.get(BillingProfile, tenant)
        if profile is None:
            raise NotFound(f"tenant {tenant} has no billing profile yet: PUT /v1/billing-profile first")
        return Seller(
            party=Party(
                name=profile.seller_name,
                street=profile.seller_street,
                city=profile.seller_city,
                postcode=profile.seller_postcode,
                country=profile.seller_country,
                vat_id=profile.seller_vat_id,
                endpoint=profile.seller_endpoint,
                gln=profile.seller_gln,
            ),
            default_tax_rate=profile.default_tax_rate,
            currency=profile.currency,
            series=profile.series,
            credit_series=profile.credit_series,
            time_zone=profile.time_zone,
            auto_email=AutoEmail(profile.auto_email),
        )

    async def contracts_to_bill(self, tenant: str, period: Period) -> list[ContractTerms]:
        rows = (
            await self.session.exec(
                select(ContractRow, Customer)
                .join(Customer, col(Customer.id) == col(ContractRow.customer_id))
                .where(
                    ContractRow.tenant == tenant,
                    col(ContractRow.starts_on) <= period.end,
                    sa.or_(col(ContractRow.ends_on).is_(None), col(ContractRow.ends_on) >= period.start),
                )
                .order_by(col(ContractRow.id))
            )
        ).all()
        charges: dict[str, list[ChargeRow]] = {}
        for charge in (await self.session.exec(select(ChargeRow).where(ChargeRow.tenant == tenant))).all():
            charges.setdefault(charge.contract_id, []).append(charge)
        lines: dict[str, list[ContractLine]] = {}
        for line in (await self.session.exec(select(ContractLine).where(ContractLine.tenant == tenant))).all():
            lines.setdefault(line.contract_id, []).append(line)
        customers: dict[str, CustomerTerms] = {}
        terms: list[ContractTerms] = []
        for contract, customer in rows:
            if customer.id not in customers:
                customers[customer.id] = customer_terms(customer)
            ended = {line.line_id: line.ended_on for line in lines.get(contract.id, [])}
            terms.append(
                ContractTerms(
                    id=contract.id,
                    customer=customers[customer.id],
                    due_day=contract.due_day,
                    status=contracts.ContractStatus(contract.status),
                    starts_on=contract.starts_on,
                    ends_on=contract.ends_on,
                    usage_allowance=contract.usage_allowance,
                    charges=tuple(
                        Charge(
                            description=charge.description,
                            amount=charge.amount,
                            recurring=charge.recurring,
                            starts_on=max(charge.starts_on, contract.starts_on),
                            ends_on=min(d for d in (charge.ends_on, contract.ends_on) if d is not None)
                            if (charge.ends_on or contract.ends_on)
                            else None,
                            tax_rate=charge.tax_rate,
                            line_id=charge.line_id,
                            line_ended_on=ended.get(charge.line_id) if charge.line_id else None,
                        )
                        for charge in charges.get(contract.id, [])
                    ),
                    line_ids=tuple(line.line_id for line in lines.get(contract.id, []) if line.ended_on is None),
                )
            )
        return terms

    async def contracts_with_calls(self, tenant: str, since: datetime, before: datetime) -> set[str]:
        result = await self.session.exec(
            select(UsageCall.contract_id)
            .where(
                UsageCall.tenant == tenant,
                col(UsageCall.started_at) >= since,
                col(UsageCall.started_at) < before,
                col(UsageCall.contract_id).is_not(None),
            )
            .distinct()
        )
        return {contract for contract in result.all() if contract}

    async def unattributed_calls(self, tenant: str, since: datetime, before: datetime) -> int:
        result = await self._execute(
            sa.select(sa.func.count()).where(
                col(UsageCall.tenant) == tenant,
                col(UsageCall.contract_id).is_(None),
                col(UsageCall.started_at) >= since,
                col(UsageCall.started_at) < before,
            )
        )
        return int(result.scalar_one())

    async def customer_history(self, tenant: str, before: date) -> dict[str, list[Decimal]]:
        since = before - timedelta(days=366)
        rows = (
            await self._execute(
                sa.select(col(InvoiceRow.customer_id), col(InvoiceRow.period_start), col(InvoiceRow.net))
                .where(
                    col(InvoiceRow.tenant) == tenant,
                    col(InvoiceRow.kind) == InvoiceKind.INVOICE.value,
                    col(InvoiceRow.period_start) < before,
                    col(InvoiceRow.period_start) >= since,
                )
                .order_by(col(InvoiceRow.period_start))
            )
        ).all()
        months: dict[str, dict[date, Decimal]] = {}
        for customer, start, net in rows:
            per_month = months.setdefault(customer, {})
            per_month[start] = per_month.get(start, Decimal(0)) + net
        return {customer: list(per_month.values()) for customer, per_month in months.items()}

    async def lock_series(self, tenant: str, series: str) -> int:
        """Take the series row's lock (until commit) and return its next number."""
        insert = self._insert()
        await self.session.exec(
            insert(NumberSeries)
            .values(tenant=tenant, series=series, next_number=1)
            .on_conflict_do_nothing(index_elements=["tenant", "series"])
        )
        result = await self.session.exec(
            sa.update(NumberSeries)
            .where(col(NumberSeries.tenant) == tenant, col(NumberSeries.series) == series)
            .values(next_number=NumberSeries.next_number)
            .returning(col(NumberSeries.next_number))
        )
        return int(result.scalar_one())

    async def set_next_number(self, tenant: str, series: str, next_number: int) -> None:
        await self.session.exec(
            sa.update(NumberSeries)
            .where(col(NumberSeries.tenant) == tenant, col(NumberSeries.series) == series)
            .values(next_number=next_number)
        )

    async def already_issued(self, tenant: str, dedupe_keys: Sequence[str]) -> set[str]:
        result = await self.session.exec(
            select(InvoiceRow.dedupe_key).where(
                InvoiceRow.tenant == tenant, col(InvoiceRow.dedupe_key).in_(dedupe_keys)
            )
        )
        return set(result.all())

    async def take_usage(
        self, tenant: str, invoices: Mapping[str, str | None], before: datetime
    ) -> dict[str, list[ClassUsage]]:
        """Mark each contract's unbilled calls with its invoice id, then sum what was marked, per contract.

        Two statements per chunk of contracts, whatever its size. Marking first and summing the
        marked rows means a call that arrives meanwhile is either in both or in neither. A contract
        mapped to None (dry run) is only summed, over its unbilled calls.
        """
        contract_ids = list(invoices)
        marking = {contract: invoice for contract, invoice in invoices.items() if invoice is not None}
        unbilled = [
            col(UsageCall.tenant) == tenant,
            col(UsageCall.contract_id).in_(contract_ids),
            col(UsageCall.invoice_id).is_(None),
            col(UsageCall.started_at) < before,
        ]
        if marking:
            # One UPDATE per contract, sent as one executemany: each one seeks the billing index,
            # where a single UPDATE with a CASE over the chunk's contracts tested every WHEN per row.
            await self._execute_many(
                sa.update(UsageCall)
                .where(
                    col(UsageCall.tenant) == tenant,
                    col(UsageCall.contract_id) == sa.bindparam("contract"),
                    col(UsageCall.invoice_id).is_(None),
                    col(UsageCall.started_at) < before,
                )
                .values(invoice_id=sa.bindparam("invoice")),
                [{"contract": contract, "invoice": invoice} for contract, invoice in marking.items()],
            )
            scope = [
                col(UsageCall.tenant) == tenant,
                col(UsageCall.contract_id).in_(list(marking)),
                col(UsageCall.invoice_id).in_(list(marking.values())),
            ]
        else:
            scope = unbilled
        adjustment = sa.case((col(UsageCall.calls) == 0, 1), else_=0)
        rows = (
            await self._execute(
                sa.select(
                    col(UsageCall.contract_id),
                    col(UsageCall.call_class),
                    adjustment,
                    sa.func.sum(col(UsageCall.calls)),
                    sa.func.sum(col(UsageCall.seconds)),
                    sa.func.sum(col(UsageCall.amount_micros)),
                )
                .where(*scope)
                .group_by(col(UsageCall.contract_id), col(UsageCall.call_class), adjustment)
            )
        ).all()
        usage: dict[str, list[ClassUsage]] = {}
        for contract, call_class, adjusted, calls, seconds, micros in rows:
            usage.setdefault(contract, []).append(
                ClassUsage(
                    call_class, int(calls or 0), int(seconds or 0), from_micros(int(micros or 0)), bool(adjusted)
                )
            )
        return usage

    async def queue_delivery(self, tenant: str, invoice_id: str, endpoint: str, edi_format: str) -> None:
        self.session.add(
            Delivery(
                id=str(uuid.uuid4()),
                tenant=tenant,
                invoice_id=invoice_id,
                endpoint=endpoint,
                edi_format=edi_format,
                status="pending",
                log="[]",
                created_at=utcnow(),
            )
        )

    async def delivery_target(self, tenant: str, customer_id: str) -> tuple[str, str] | None:
        customer = await self.session.get(Customer, customer_id)
        if customer is None or customer.tenant != tenant or not customer.delivery_endpoint:
            return None
        if EdiFormat(customer.edi_format) is EdiFormat.NONE:
            return None
        return customer.delivery_endpoint, customer.edi_format

    async def queue_mailing(
        self, tenant: str, invoice_id: str, recipients: Sequence[str], with_edi: str | None
    ) -> None:
        self.session.add(
            Mailing(
                id=str(uuid.uuid4()),
                tenant=tenant,
                invoice_id=invoice_id,
                recipients=json.dumps(list(recipients)),
                with_edi=with_edi,
                status="pending",
                log="[]",
                created_at=utcnow(),
            )
        )

    async def customer(self, tenant: str, customer_id: str) -> CustomerTerms:
        customer = await self.session.get(Customer, customer_id)
        if customer is None or customer.tenant != tenant:
            raise NotFound(f"customer {customer_id} not found")
        return customer_terms(customer)

    async def call_detail(self, tenant: str, invoice_id: str) -> list[UsageCall]:
        """The calls an invoice billed, in time order: its call-detail annex."""
        result = await self.session.exec(
            select(UsageCall)
            .where(UsageCall.tenant == tenant, UsageCall.invoice_id == invoice_id)
            .order_by(col(UsageCall.started_at))
        )
        return list(result.all())

    async def save_invoice(self, tenant: str, invoice: Issued, dedupe_key: str, run_id: str | None) -> None:
        await self.save_invoices(tenant, [(invoice, dedupe_key)], run_id)

    async def save_invoices(self, tenant: str, invoices: Sequence[tuple[Issued, str]], run_id: str | None) -> None:
        """Insert issued invoices in one executemany (a chunk's worth: the ORM's unit of work was a third of a run)."""
        now = utcnow()
        rows = [
            {
                "id": invoice.id,
                "tenant": tenant,
                "dedupe_key": dedupe_key,
                "number": invoice.number,
                "series": invoice.series,
                "sequence": invoice.sequence,
                "kind": invoice.kind.value,
                "credited_invoice_id": invoice.credited_invoice_id,
                "customer_id": invoice.customer_id,
                "contract_id": invoice.contract_id,
                "period_start": invoice.period.start,
                "period_end": invoice.period.end,
                "issue_date": invoice.issue_date,
                "due_date": invoice.due_date,
                "currency": invoice.currency,
                "net": invoice.net,
                "tax": invoice.tax,
                "total": invoice.total,
                "lines": lines_to_json(invoice.lines),
                "parties": json.dumps({"seller": asdict(invoice.seller), "buyer": asdict(invoice.buyer)}),
                "ubl": invoice.ubl,
                "edifact": invoice.edifact,
                "run_id": run_id,
                "credited_lines": json.dumps(list(invoice.credited_lines)) if invoice.credited_lines else None,
                "created_at": now,
            }
            for invoice, dedupe_key in invoices
        ]
        if rows:
            await self._execute_many(sa.insert(InvoiceRow), rows)

    async def credits_of(self, tenant: str, invoice_id: str) -> list[Issued]:
        rows = await self.session.exec(
            select(InvoiceRow)
            .where(InvoiceRow.tenant == tenant, InvoiceRow.credited_invoice_id == invoice_id)
            .order_by(col(InvoiceRow.sequence))
        )
        return [issued_of(row) for row in rows.all()]

    async def invoice(self, tenant: str, invoice_id: str) -> Issued:
        row = await self.session.get(InvoiceRow, invoice_id)
        if row is None or row.tenant != tenant:
            raise NotFound(f"invoice {invoice_id} not found")
        return issued_of(row)


def store_factory(units: UnitOfWorkFactory) -> Any:
    """Open a `SqlStore` on a new unit of work (one transaction)."""

    @asynccontextmanager
    async def open_store() -> AsyncIterator[Store]:
        async with units() as uow:
            yield SqlStore(uow)

    return open_store
