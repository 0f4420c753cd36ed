"""Customers, contracts, lines, charges, usage, number series, invoices and billing runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invoicer_billing_profile",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("seller_name", sa.String(length=200), nullable=False),
        sa.Column("seller_vat_id", sa.String(length=50), nullable=False),
        sa.Column("seller_street", sa.String(length=200), nullable=False),
        sa.Column("seller_city", sa.String(length=100), nullable=False),
        sa.Column("seller_postcode", sa.String(length=20), nullable=False),
        sa.Column("seller_country", sa.String(length=2), nullable=False),
        sa.Column("seller_endpoint", sa.String(length=100), nullable=False),
        sa.Column("seller_gln", sa.String(length=13), nullable=True),
        sa.Column("default_tax_rate", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("series", sa.String(length=20), nullable=False),
        sa.Column("credit_series", sa.String(length=20), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )
    op.create_table(
        "invoicer_billing_run",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("net", sa.String(length=40), nullable=False),
        sa.Column("checks", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_invoicer_billing_run_tenant"), "invoicer_billing_run", ["tenant"], unique=False)
    op.create_table(
        "invoicer_customer",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("tax_id", sa.String(length=50), nullable=True),
        sa.Column("street", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("postcode", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("emails", sa.Text(), nullable=False),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("tax_treatment", sa.String(length=20), nullable=False),
        sa.Column("tax_rate", sa.String(length=40), nullable=True),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("edi_format", sa.String(length=20), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=True),
        sa.Column("peppol_id", sa.String(length=100), nullable=True),
        sa.Column("delivery_endpoint", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_invoicer_customer_tenant"), "invoicer_customer", ["tenant"], unique=False)
    op.create_table(
        "invoicer_invoice",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("series", sa.String(length=20), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("credited_invoice_id", sa.String(length=36), nullable=True),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("net", sa.String(length=40), nullable=False),
        sa.Column("tax", sa.String(length=40), nullable=False),
        sa.Column("total", sa.String(length=40), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("parties", sa.Text(), nullable=False),
        sa.Column("ubl", sa.Text(), nullable=False),
        sa.Column("edifact", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "dedupe_key", name="uq_invoicer_invoice_once"),
        sa.UniqueConstraint("tenant", "series", "sequence", name="uq_invoicer_invoice_number"),
    )
    op.create_index(op.f("ix_invoicer_invoice_tenant"), "invoicer_invoice", ["tenant"], unique=False)
    op.create_table(
        "invoicer_number_series",
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("series", sa.String(length=20), nullable=False),
        sa.Column("next_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "series"),
    )
    op.create_table(
        "invoicer_usage_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=True),
        sa.Column("line_id", sa.String(length=100), nullable=True),
        sa.Column("call_class", sa.String(length=50), nullable=False),
        sa.Column("dialled", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("invoice_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "record_id", "version", name="uq_invoicer_usage_version"),
    )
    op.create_index(
        "ix_invoicer_usage_billing", "invoicer_usage_call", ["tenant", "contract_id", "invoice_id"], unique=False
    )
    op.create_index("ix_invoicer_usage_record", "invoicer_usage_call", ["tenant", "record_id"], unique=False)
    op.create_table(
        "invoicer_contract",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("cycle", sa.String(length=20), nullable=False),
        sa.Column("due_day", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("usage_allowance", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["invoicer_customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_invoicer_contract_tenant"), "invoicer_contract", ["tenant"], unique=False)
    op.create_table(
        "invoicer_charge",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("line_id", sa.String(length=100), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.Column("recurring", sa.Boolean(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("tax_rate", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["invoicer_contract.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_invoicer_charge_contract_id"), "invoicer_charge", ["contract_id"], unique=False)
    op.create_table(
        "invoicer_contract_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("line_id", sa.String(length=100), nullable=False),
        sa.Column("assigned_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["invoicer_contract.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "line_id", name="uq_invoicer_contract_line"),
    )
    op.create_index(
        op.f("ix_invoicer_contract_line_contract_id"), "invoicer_contract_line", ["contract_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("invoicer_contract_line")
    op.drop_table("invoicer_charge")
    op.drop_table("invoicer_contract")
    op.drop_table("invoicer_usage_call")
    op.drop_table("invoicer_number_series")
    op.drop_table("invoicer_invoice")
    op.drop_table("invoicer_customer")
    op.drop_table("invoicer_billing_run")
    op.drop_table("invoicer_billing_profile")
