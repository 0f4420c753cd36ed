"""Archive: index only the legs still waiting for their call, not every record.

The pending-legs lookup (a call's earlier legs, stale legs for the watchdog) only ever asks for
records whose `call_record_id` is empty. A partial index holds just those (a few per open
transfer) instead of a four-column entry per archived record, which every insert paid for.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING = sa.text("call_record_id IS NULL")


def upgrade() -> None:
    op.drop_index("ix_collector_archive_pending", table_name="collector_archive")
    op.create_index(
        "ix_collector_archive_waiting",
        "collector_archive",
        ["tenant", "source_id", "call_id"],
        sqlite_where=_WAITING,
        postgresql_where=_WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_collector_archive_waiting", table_name="collector_archive")
    op.create_index(
        "ix_collector_archive_pending", "collector_archive", ["tenant", "source_id", "call_record_id", "call_id"]
    )
