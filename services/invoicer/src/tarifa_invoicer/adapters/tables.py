"""The invoicer's SQLModel tables; every row carries its tenant.

Money that is only stored and read back is an exact decimal string (`DecimalText`), so SQLite,
which has no decimal type, keeps it exact too; usage amounts, which are summed in SQL over
millions of calls, are integers of micro-units (`amount_micros`), exact on both databases.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

MICROS = Decimal(1_000_000)


class DecimalText(sa.types.TypeDecorator[Decimal]):
    """A Decimal stored as its exact text."""

    impl = sa.String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


def to_micros(amount: Decimal) -> int:
    return int((amount * MICROS).to_integral_value())


def from_micros(micros: int) -> Decimal:
    return Decimal(micros) / MICROS


def _money() -> Any:
    return Field(sa_type=DecimalText)


def _when() -> Any:
    return Field(sa_type=sa.DateTime(timezone=True))


class BillingProfile(SQLModel, table=True):
    """The tenant as a seller: who issues the invoices, at which default tax rate, in which zone."""

    __tablename__ = "invoicer_billing_profile"

    tenant: str = Field(primary_key=True, max_length=100)
    seller_name: str = Field(max_length=200)
    seller_vat_id: str = Field(max_length=50)
    seller_street: str = Field(max_length=200)
    seller_city: str = Field(max_length=100)
    seller_postcode: str = Field(max_length=20)
    seller_country: str = Field(max_length=2)
    seller_endpoint: str = Field(max_length=100, description="Peppol participant id, scheme:value")
    seller_gln: str | None = Field(default=None, max_length=13)
    default_tax_rate: Decimal = _money()
    currency: str = Field(max_length=3)
    series: str = Field(max_length=20)
    credit_series: str = Field(max_length=20)
    time_zone: str = Field(max_length=64)
    payment_terms_days: int = 30
    auto_email: str = Field(default="off", max_length=20, description="off, pdf or pdf_and_edi")


class Customer(SQLModel, table=True):
    __tablename__ = "invoicer_customer"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(index=True, max_length=100)
    name: str = Field(max_length=200)
    tax_id: str | None = Field(default=None, max_length=50)
    street: str = Field(max_length=200)
    city: str = Field(max_length=100)
    postcode: str = Field(max_length=20)
    country: str = Field(max_length=2)
    emails: str = Field(sa_type=sa.Text, description="JSON list")
    billable: bool = True
    tax_treatment: str = Field(max_length=20)
    tax_rate: Decimal | None = Field(default=None, sa_type=DecimalText)
    language: str = Field(max_length=10)
    edi_format: str = Field(max_length=20)
    gln: str | None = Field(default=None, max_length=13)
    peppol_id: str | None = Field(default=None, max_length=100)
    delivery_endpoint: str | None = Field(default=None, max_length=500)
    auto_email: str = Field(default="tenant", max_length=20, description="tenant, off, pdf or pdf_and_edi")
    edi_signing_key: str | None = Field(default=None, max_length=200, description="HMAC key of its EDI pushes")
    created_at: datetime = _when()


class ContractRow(SQLModel, table=True):
    __tablename__ = "invoicer_contract"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(index=True, max_length=100)
    customer_id: str = Field(foreign_key="invoicer_customer.id", max_length=36)
    cycle: str = Field(max_length=20)
    due_day: int
    status: str = Field(max_length=30)
    starts_on: date
    ends_on: date | None = None
    usage_allowance: Decimal = _money()
    created_at: datetime = _when()


class ContractLine(SQLModel, table=True):
    """A line or extension assigned to a contract, by hand or by file import."""

    __tablename__ = "invoicer_contract_line"
    __table_args__ = (sa.UniqueConstraint("tenant", "line_id", name="uq_invoicer_contract_line"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=100)
    contract_id: str = Field(foreign_key="invoicer_contract.id", index=True, max_length=36)
    line_id: str = Field(max_length=100, description="the line id or the extension")
    assigned_on: date
    ended_on: date | None = None


class ChargeRow(SQLModel, table=True):
    __tablename__ = "invoicer_charge"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100)
    contract_id: str = Field(foreign_key="invoicer_contract.id", index=True, max_length=36)
    line_id: str | None = Field(default=None, max_length=100)
    description: str = Field(max_length=200)
    amount: Decimal = _money()
    recurring: bool
    starts_on: date
    ends_on: date | None = None
    tax_rate: Decimal | None = Field(default=None, sa_type=DecimalText)


class UsageCall(SQLModel, table=True):
    """One rated call as billed: the latest version while unbilled, an adjustment row after."""

    __tablename__ = "invoicer_usage_call"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "record_id", "version", name="uq_invoicer_usage_version"),
        sa.Index("ix_invoicer_usage_billing", "tenant", "contract_id", "invoice_id"),
        sa.Index("ix_invoicer_usage_record", "tenant", "record_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=100)
    record_id: str = Field(max_length=100)
    version: int
    contract_id: str | None = Field(default=None, max_length=36)
    line_id: str | None = Field(default=None, max_length=100)
    call_class: str = Field(max_length=50)
    dialled: str = Field(default="", max_length=64, description="for the call-detail annex")
    started_at: datetime = _when()
    calls: int = Field(description="1 for a call, 0 for a re-rate adjustment of a billed call")
    seconds: int
    amount_micros: int = Field(sa_type=sa.BigInteger)
    invoice_id: str | None = Field(default=None, max_length=36)


class NumberSeries(SQLModel, table=True):
    """The next number of a series; its row lock serialises issuers, so numbers have no gaps."""

    __tablename__ = "invoicer_number_series"

    tenant: str = Field(primary_key=True, max_length=100)
    series: str = Field(primary_key=True, max_length=20)
    next_number: int


class InvoiceRow(SQLModel, table=True):
    """An issued invoice or credit note; never updated once written."""

    __tablename__ = "invoicer_invoice"
    __table_args__ = (
        sa.UniqueConstraint("tenant", "series", "sequence", name="uq_invoicer_invoice_number"),
        sa.UniqueConstraint("tenant", "dedupe_key", name="uq_invoicer_invoice_once"),
    )

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(index=True, max_length=100)
    dedupe_key: str = Field(max_length=120, description="invoice:<contract>:<period> or credit:<invoice>")
    number: str = Field(max_length=40)
    series: str = Field(max_length=20)
    sequence: int
    kind: str = Field(max_length=20)
    credited_invoice_id: str | None = Field(default=None, max_length=36)
    customer_id: str = Field(max_length=36)
    contract_id: str = Field(max_length=36)
    period_start: date
    period_end: date
    issue_date: date
    due_date: date
    currency: str = Field(max_length=3)
    net: Decimal = _money()
    tax: Decimal = _money()
    total: Decimal = _money()
    lines: str = Field(sa_type=sa.Text, description="JSON of the lines and tax subtotals")
    parties: str = Field(sa_type=sa.Text, description="JSON of seller and buyer as issued")
    ubl: str = Field(sa_type=sa.Text)
    edifact: str = Field(sa_type=sa.Text)
    run_id: str | None = Field(default=None, max_length=36)
    credited_lines: str | None = Field(
        default=None, sa_type=sa.Text, description="JSON: lines a partial credit credits"
    )
    created_at: datetime = _when()


class BillingRun(SQLModel, table=True):
    __tablename__ = "invoicer_billing_run"

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(index=True, max_length=100)
    period_start: date
    period_end: date
    dry_run: bool
    status: str = Field(max_length=20)
    total: int = 0
    done: int = 0
    issued: int = 0
    skipped: int = 0
    net: Decimal = _money()
    checks: str = Field(sa_type=sa.Text, description="JSON list of pre-check findings")
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = _when()
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class Delivery(SQLModel, table=True):
    """An EDI document pushed to a customer's endpoint: its status and the log of its attempts."""

    __tablename__ = "invoicer_delivery"
    __table_args__ = (sa.UniqueConstraint("tenant", "invoice_id", name="uq_invoicer_delivery_invoice"),)

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100)
    invoice_id: str = Field(max_length=36)
    endpoint: str = Field(max_length=500)
    edi_format: str = Field(max_length=20)
    status: str = Field(index=True, max_length=20, description="pending, delivered or failed")
    attempts: int = 0
    log: str = Field(sa_type=sa.Text, description="JSON list of attempts: at, outcome")
    created_at: datetime = _when()
    delivered_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class Mailing(SQLModel, table=True):
    """An invoice e-mailed automatically after issue: at most one per invoice, and its outcome.

    `sending` is claimed (committed) before the SMTP conversation, so a restart never sends it
    again; one left `sending` longer than a conversation can last becomes `uncertain` for a person.
    """

    __tablename__ = "invoicer_mailing"
    __table_args__ = (sa.UniqueConstraint("tenant", "invoice_id", name="uq_invoicer_mailing_invoice"),)

    id: str = Field(primary_key=True, max_length=36)
    tenant: str = Field(max_length=100)
    invoice_id: str = Field(max_length=36)
    recipients: str = Field(sa_type=sa.Text, description="JSON list of addresses")
    with_edi: str | None = Field(default=None, max_length=20)
    status: str = Field(index=True, max_length=20, description="pending, sending, sent, failed or uncertain")
    attempts: int = 0
    log: str = Field(sa_type=sa.Text, description="JSON list of attempts: at, outcome")
    created_at: datetime = _when()
    claimed_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    sent_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
