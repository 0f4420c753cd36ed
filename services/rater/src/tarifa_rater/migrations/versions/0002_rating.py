"""Tariffs, assignments, holidays, numbering, extension directory, aliases, calls and their ratings.

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

MONEY = sa.Numeric(28, 12).with_variant(sa.String(40), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rater_tariff_plan",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("code", sa.String(100), nullable=False),
        sa.Column("valid_from", WHEN, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("normal_weekdays", sa.String(7), nullable=False),
        sa.Column("normal_from_hour", sa.Integer, nullable=False),
        sa.Column("normal_until_hour", sa.Integer, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.UniqueConstraint("tenant", "code", "valid_from", name="uq_rater_tariff_plan_version"),
    )
    op.create_table(
        "rater_rate",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("plan_id", sa.Integer, sa.ForeignKey("rater_tariff_plan.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("prefixes", sa.Text, nullable=False),
        sa.Column("call_class", sa.String(30), nullable=True),
        sa.Column("price_per_minute", MONEY, nullable=False),
        sa.Column("reduced_price_per_minute", MONEY, nullable=True),
        sa.Column("connect_fee", MONEY, nullable=False),
        sa.Column("cost_per_minute", MONEY, nullable=True),
        sa.Column("first_increment", sa.Integer, nullable=False),
        sa.Column("next_increment", sa.Integer, nullable=False),
        sa.Column("minimum_charge", MONEY, nullable=False),
        sa.Column("free_seconds", sa.Integer, nullable=False),
        sa.Column("free_inclusive", sa.Boolean, nullable=False),
    )
    op.create_table(
        "rater_plan_assignment",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("scope", sa.String(20), primary_key=True),
        sa.Column("scope_id", sa.String(100), primary_key=True),
        sa.Column("plan_code", sa.String(100), nullable=False),
    )
    op.create_table(
        "rater_holiday",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "rater_numbering",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("source_id", sa.String(100), primary_key=True),
        sa.Column("country_code", sa.String(4), nullable=False),
        sa.Column("home_area_code", sa.String(5), nullable=False),
    )
    op.create_table(
        "rater_extension",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("extension", sa.String(100), primary_key=True),
        sa.Column("line_id", sa.String(100), nullable=True),
        sa.Column("customer_id", sa.String(100), nullable=True),
        sa.Column("contract_id", sa.String(100), nullable=True),
        sa.Column("cost_centre", sa.String(100), nullable=True),
        sa.Column("department", sa.String(100), nullable=True),
        sa.Column("allowed_classes", sa.String(200), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "rater_alias",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("number", sa.String(40), primary_key=True),
        sa.Column("extension", sa.String(100), nullable=False),
    )
    op.create_table(
        "rater_tenant_state",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("token", sa.String(40), nullable=False),
    )
    op.create_table(
        "rater_call",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=False),
        sa.Column("source_id", sa.String(100), nullable=False),
        sa.Column("call_id", sa.String(200), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("dialled", sa.String(80), nullable=False),
        sa.Column("called_e164", sa.String(40), nullable=True),
        sa.Column("extension", sa.String(100), nullable=True),
        sa.Column("answered_by", sa.String(100), nullable=True),
        sa.Column("transferred", sa.Boolean, nullable=False),
        sa.Column("billable_seconds", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("call_class", sa.String(30), nullable=True),
        sa.Column("destination", sa.String(200), nullable=True),
        sa.Column("charged_seconds", sa.Integer, nullable=False),
        sa.Column("amount", MONEY, nullable=True),
        sa.Column("cost_amount", MONEY, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("line_id", sa.String(100), nullable=True),
        sa.Column("customer_id", sa.String(100), nullable=True),
        sa.Column("contract_id", sa.String(100), nullable=True),
        sa.Column("cost_centre", sa.String(100), nullable=True),
        sa.Column("department", sa.String(100), nullable=True),
        sa.Column("plan", sa.String(100), nullable=True),
        sa.Column("rate", sa.String(200), nullable=True),
        sa.Column("band", sa.String(20), nullable=True),
        sa.Column("breakdown", sa.Text, nullable=True),
        sa.Column("out_of_class", sa.Boolean, nullable=False),
        sa.Column("rated_at", WHEN, nullable=True),
        sa.Column("cdr", sa.Text, nullable=False),
        sa.UniqueConstraint("tenant", "record_id", name="uq_rater_call_record"),
    )
    op.create_index("ix_rater_call_period", "rater_call", ["tenant", "started_at"])
    op.create_index("ix_rater_call_status", "rater_call", ["tenant", "status"])
    op.create_table(
        "rater_rating",
        sa.Column("tenant", sa.String(100), primary_key=True),
        sa.Column("record_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("previous_amount", MONEY, nullable=True),
        sa.Column("cost_amount", MONEY, nullable=True),
        sa.Column("plan", sa.String(100), nullable=True),
        sa.Column("rate", sa.String(200), nullable=True),
        sa.Column("cause", sa.String(40), nullable=False),
        sa.Column("rated_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "rater_rating",
        "rater_call",
        "rater_tenant_state",
        "rater_alias",
        "rater_extension",
        "rater_numbering",
        "rater_holiday",
        "rater_plan_assignment",
        "rater_rate",
        "rater_tariff_plan",
    ):
        op.drop_table(table)
