"""Billing profile, customers, contracts, lines, charges, invoices and runs: reads and writes for the API."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import SecretStr
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common import contracts
from tarifa_common.errors import Conflict, InvalidInput, NotFound
from tarifa_common.events import utcnow
from tarifa_common.unit_of_work import UnitOfWork
from tarifa_invoicer import handlers
from tarifa_invoicer.adapters.store import SqlStore, adopt_orphan_calls
from tarifa_invoicer.adapters.tables import (
    BillingProfile,
    BillingRun,
    ChargeRow,
    ContractLine,
    ContractRow,
    Customer,
    InvoiceRow,
)
from tarifa_invoicer.domain.accounts import EdiFormat, buyer_endpoint, check_emails, check_endpoint, check_gln
from tarifa_invoicer.domain.invoice import TaxOf, TaxTreatment


def new_id() -> str:
    return str(uuid.uuid4())


async def save_profile(session: AsyncSession, tenant: str, values: dict[str, Any]) -> BillingProfile:
    check_endpoint(values["seller_endpoint"], "seller_endpoint")
    if values.get("seller_gln"):
        check_gln(values["seller_gln"], "seller_gln")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(values["time_zone"])
    except (KeyError, ValueError) as error:
        raise InvalidInput("time_zone", f"{values['time_zone']!r} is not an IANA time zone") from error
    if values.get("auto_email") == "tenant":
        raise InvalidInput("auto_email", "the billing profile's setting is off, pdf or pdf_and_edi")
    if values["series"] == values["credit_series"]:
        raise InvalidInput("credit_series", "credit notes need their own series, distinct from invoices")
    profile = await session.get(BillingProfile, tenant)
    if profile is None:
        profile = BillingProfile(tenant=tenant, **values)
    else:
        for key, value in values.items():
            setattr(profile, key, value)
    session.add(profile)
    return profile


async def create_customer(session: AsyncSession, tenant: str, values: dict[str, Any]) -> Customer:
    treatment = TaxTreatment(values["tax_treatment"])
    TaxOf(treatment, Decimal(0), values.get("tax_rate"))()  # a 'specific' treatment needs its rate
    emails = check_emails(list(values.get("emails", [])))
    if values.get("gln"):
        check_gln(values["gln"])
    if values.get("peppol_id"):
        check_endpoint(values["peppol_id"])
    if values.get("billable", True):
        buyer_endpoint(values.get("peppol_id"), values.get("gln"), emails)
    if EdiFormat(values["edi_format"]) is EdiFormat.EDIFACT and not values.get("gln"):
        raise InvalidInput("gln", "EANCOM INVOIC addresses parties by GLN: give the customer's GLN")
    key = values.get("edi_signing_key")
    values = {**values, "edi_signing_key": key.get_secret_value() if isinstance(key, SecretStr) else key}
    customer = Customer(id=new_id(), tenant=tenant, created_at=utcnow(), **{**values, "emails": json.dumps(emails)})
    session.add(customer)
    return customer


async def get_customer(session: AsyncSession, tenant: str, customer_id: str) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.tenant != tenant:
        raise NotFound(f"customer {customer_id} not found")
    return customer


async def list_customers(session: AsyncSession, tenant: str) -> list[Customer]:
    return list((await session.exec(select(Customer).where(Customer.tenant == tenant).order_by(Customer.name))).all())


async def create_contract(uow: UnitOfWork, tenant: str, values: dict[str, Any]) -> ContractRow:
    """A new contract is active; its first status is published like every later change."""
    await get_customer(uow.session, tenant, values["customer_id"])
    if not 1 <= values["due_day"] <= 28:
        raise InvalidInput("due_day", "must be between 1 and 28 (a day every month has)")
    contract = ContractRow(
        id=new_id(), tenant=tenant, status=contracts.ContractStatus.ACTIVE.value, created_at=utcnow(), **values
    )
    uow.session.add(contract)
    handlers.publish_status(
        SqlStore(uow),
        contracts.ContractStatusChanged(
            tenant=tenant,
            contract_id=contract.id,
            customer_id=contract.customer_id,
            status=contracts.ContractStatus.ACTIVE,
            previous=None,
            reason="contract created",
            changed_at=contract.created_at,
        ),
    )
    return contract


async def get_contract(session: AsyncSession, tenant: str, contract_id: str) -> ContractRow:
    contract = await session.get(ContractRow, contract_id)
    if contract is None or contract.tenant != tenant:
        raise NotFound(f"contract {contract_id} not found")
    return contract


async def list_contracts(session: AsyncSession, tenant: str, customer_id: str | None) -> list[ContractRow]:
    query = select(ContractRow).where(ContractRow.tenant == tenant)
    if customer_id:
        query = query.where(ContractRow.customer_id == customer_id)
    return list((await session.exec(query.order_by(col(ContractRow.created_at)))).all())


async def assign_line(session: AsyncSession, tenant: str, contract_id: str, line_id: str, on: date) -> ContractLine:
    await get_contract(session, tenant, contract_id)
    taken = (
        await session.exec(select(ContractLine).where(ContractLine.tenant == tenant, ContractLine.line_id == line_id))
    ).first()
    if taken is not None:
        raise Conflict(f"line {line_id} is already assigned to contract {taken.contract_id}")
    line = ContractLine(tenant=tenant, contract_id=contract_id, line_id=line_id, assigned_on=on)
    session.add(line)
    await adopt_orphan_calls(session, tenant, contract_id, line_id)
    return line


async def import_lines(session: AsyncSession, tenant: str, text: str) -> int:
    """Assign lines from CSV `contract_id,line_id,assigned_on` (header required); all or nothing.

    A bad row names its line number and field, and nothing is assigned.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = {"contract_id", "line_id", "assigned_on"} - set(reader.fieldnames or [])
    if missing:
        raise InvalidInput("file", f"the header must name contract_id,line_id,assigned_on; missing {sorted(missing)}")
    count = 0
    for number, row in enumerate(reader, start=2):
        try:
            on = date.fromisoformat(row["assigned_on"].strip())
        except ValueError as error:
            raise InvalidInput(f"line {number}.assigned_on", f"{row['assigned_on']!r} is not YYYY-MM-DD") from error
        try:
            await assign_line(session, tenant, row["contract_id"].strip(), row["line_id"].strip(), on)
        except (NotFound, Conflict) as error:
            raise InvalidInput(f"line {number}", error.message) from error
        await session.flush()
        count += 1
    return count


async def end_line(session: AsyncSession, tenant: str, contract_id: str, line_id: str, on: date) -> ContractLine:
    line = (
        await session.exec(
            select(ContractLine).where(
                ContractLine.tenant == tenant, ContractLine.contract_id == contract_id, ContractLine.line_id == line_id
            )
        )
    ).first()
    if line is None:
        raise NotFound(f"line {line_id} is not assigned to contract {contract_id}")
    line.ended_on = on
    session.add(line)
    return line


async def add_charge(session: AsyncSession, tenant: str, contract_id: str, values: dict[str, Any]) -> ChargeRow:
    await get_contract(session, tenant, contract_id)
    if values["amount"] < 0:
        raise InvalidInput("amount", "a charge is not negative; correct an invoice with a credit note")
    charge = ChargeRow(id=new_id(), tenant=tenant, contract_id=contract_id, **values)
    session.add(charge)
    return charge


async def list_charges(session: AsyncSession, tenant: str, contract_id: str) -> list[ChargeRow]:
    return list(
        (
            await session.exec(
                select(ChargeRow).where(ChargeRow.tenant == tenant, ChargeRow.contract_id == contract_id)
            )
        ).all()
    )


async def list_invoices(
    session: AsyncSession, tenant: str, period_start: date | None, customer_id: str | None
) -> list[InvoiceRow]:
    query = select(InvoiceRow).where(InvoiceRow.tenant == tenant)
    if period_start:
        query = query.where(InvoiceRow.period_start == period_start)
    if customer_id:
        query = query.where(InvoiceRow.customer_id == customer_id)
    return list((await session.exec(query.order_by(col(InvoiceRow.series), col(InvoiceRow.sequence)))).all())


async def get_invoice(session: AsyncSession, tenant: str, invoice_id: str) -> InvoiceRow:
    invoice = await session.get(InvoiceRow, invoice_id)
    if invoice is None or invoice.tenant != tenant:
        raise NotFound(f"invoice {invoice_id} not found")
    return invoice


async def get_run(session: AsyncSession, tenant: str, run_id: str) -> BillingRun:
    run = await session.get(BillingRun, run_id)
    if run is None or run.tenant != tenant:
        raise NotFound(f"billing run {run_id} not found")
    return run
