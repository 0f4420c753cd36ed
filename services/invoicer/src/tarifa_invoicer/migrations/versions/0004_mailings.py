"""E-mail after issue (one mailing per invoice), the lines a partial credit note credits, customers' EDI keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invoicer_billing_profile") as table:
        table.add_column(sa.Column("auto_email", sa.String(length=20), nullable=False, server_default="off"))
    with op.batch_alter_table("invoicer_customer") as table:
        table.add_column(sa.Column("auto_email", sa.String(length=20), nullable=False, server_default="tenant"))
        table.add_column(sa.Column("edi_signing_key", sa.String(length=200), nullable=True))
    with op.batch_alter_table("invoicer_invoice") as table:
        table.add_column(sa.Column("credited_lines", sa.Text(), nullable=True))
    op.create_table(
        "invoicer_mailing",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=100), nullable=False),
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("with_edi", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "invoice_id", name="uq_invoicer_mailing_invoice"),
    )
    op.create_index("ix_invoicer_mailing_status", "invoicer_mailing", ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("invoicer_mailing")
    with op.batch_alter_table("invoicer_invoice") as table:
        table.drop_column("credited_lines")
    with op.batch_alter_table("invoicer_customer") as table:
        table.drop_column("edi_signing_key")
        table.drop_column("auto_email")
    with op.batch_alter_table("invoicer_billing_profile") as table:
        table.drop_column("auto_email")
