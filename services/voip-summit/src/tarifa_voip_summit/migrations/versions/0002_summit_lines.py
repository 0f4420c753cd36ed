"""Summit integration, number ranges and allocations, catalogue, SIP lines, DIDs, operation queue, audit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant() -> sa.Column[Any]:
    return sa.Column("tenant", sa.String(64), nullable=False)


def _at(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "vs_integration",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("import_period", sa.String(16), nullable=False),
        sa.Column("access_user", sa.String(200), nullable=False),
        sa.Column("access_password_encrypted", sa.Text(), nullable=False),
        sa.Column("access_url", sa.String(300), nullable=False),
        sa.Column("access_port", sa.Integer(), nullable=False),
        sa.Column("api_host", sa.String(300), nullable=False),
        sa.Column("api_port", sa.Integer(), nullable=False),
        sa.Column("cdr_directory", sa.String(500), nullable=False),
        sa.Column("delete_cdr_files", sa.Boolean(), nullable=False),
        sa.Column("catalogue_mode", sa.String(16), nullable=False),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_index("ix_vs_integration_tenant", "vs_integration", ["tenant"])
    op.create_table(
        "vs_number_range",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(8), nullable=False),
        sa.Column("first", sa.String(16), nullable=False),
        sa.Column("last", sa.String(16), nullable=False),
        _at("created_at"),
    )
    op.create_index("ix_vs_number_range_tenant", "vs_number_range", ["tenant"])
    op.create_table(
        "vs_number_allocation",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("number", sa.String(20), primary_key=True),
        sa.Column("line_id", sa.String(32), nullable=False),
        sa.Column("holder", sa.String(8), nullable=False),
    )
    op.create_index("ix_vs_number_allocation_line_id", "vs_number_allocation", ["line_id"])
    op.create_table(
        "vs_partition",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("blocking_enabled", sa.Boolean(), nullable=False),
        sa.Column("default_category", sa.String(64), nullable=True),
        sa.Column("block_category", sa.String(64), nullable=True),
        sa.Column("partial_block_category", sa.String(64), nullable=True),
        sa.Column("cancellation_category", sa.String(64), nullable=True),
        sa.Column("extra_categories", sa.Text(), nullable=False),
        sa.UniqueConstraint("tenant", "code", name="uq_vs_partition_code"),
    )
    op.create_index("ix_vs_partition_tenant", "vs_partition", ["tenant"])
    op.create_table(
        "vs_catalogue",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("folded", sa.String(64), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.UniqueConstraint("tenant", "kind", "folded", name="uq_vs_catalogue_code"),
    )
    op.create_index("ix_vs_catalogue_tenant", "vs_catalogue", ["tenant"])
    op.create_table(
        "vs_line",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("contract_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(32), nullable=False),
        sa.Column("billing_plan", sa.String(64), nullable=True),
        sa.Column("bid_type", sa.String(16), nullable=False),
        sa.Column("description", sa.String(200), nullable=True),
        sa.Column("account_code", sa.String(6), nullable=True),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("extension", sa.String(20), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("partition", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("licence", sa.String(64), nullable=True),
        sa.Column("activation_date", sa.Date(), nullable=True),
        sa.Column("due_day", sa.Integer(), nullable=False),
        sa.Column("cost_centre", sa.String(64), nullable=False),
        sa.Column("call_limit", sa.Integer(), nullable=False),
        sa.Column("credit_limit", sa.Numeric(18, 6), nullable=True),
        sa.Column("city", sa.String(100), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("terminal_id", sa.String(64), nullable=True),
        sa.Column("credential", sa.String(200), nullable=True),
        sa.Column("sync_status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_index("ix_vs_line_tenant", "vs_line", ["tenant"])
    op.create_index("ix_vs_line_contract_id", "vs_line", ["contract_id"])
    op.create_table(
        "vs_did",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("line_id", sa.String(32), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("city", sa.String(100), nullable=True),
        sa.Column("port_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_vs_did_tenant", "vs_did", ["tenant"])
    op.create_index("ix_vs_did_line_id", "vs_did", ["line_id"])
    op.create_table(
        "vs_operation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _tenant(),
        sa.Column("line_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("created_at"),
        _at("applied_at", nullable=True),
        _at("claimed_until", nullable=True),
    )
    op.create_index("ix_vs_operation_tenant", "vs_operation", ["tenant"])
    op.create_index("ix_vs_operation_line_id", "vs_operation", ["line_id"])
    op.create_index("ix_vs_operation_status", "vs_operation", ["status"])
    op.create_table(
        "vs_line_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _tenant(),
        sa.Column("line_id", sa.String(32), nullable=False),
        sa.Column("what", sa.String(200), nullable=False),
        sa.Column("old_category", sa.String(64), nullable=True),
        sa.Column("new_category", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("caused_by", sa.String(64), nullable=True),
        _at("at"),
    )
    op.create_index("ix_vs_line_audit_tenant", "vs_line_audit", ["tenant"])
    op.create_index("ix_vs_line_audit_line_id", "vs_line_audit", ["line_id"])


def downgrade() -> None:
    for table in (
        "vs_line_audit",
        "vs_operation",
        "vs_did",
        "vs_line",
        "vs_catalogue",
        "vs_partition",
        "vs_number_allocation",
        "vs_number_range",
        "vs_integration",
    ):
        op.drop_table(table)
