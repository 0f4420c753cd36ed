"""The waiting indexes hold only the calls that wait: a rated call writes neither.

`ix_rater_call_waiting` (tenant, status, reason, id) and `ix_rater_call_extension` (tenant,
status, extension) served only queries for unrated calls (the retries of a tariff, extension or
number plan that arrives, and the count of waiting calls), yet every call, rated or not, added
an entry to each: two b-trees more to write per call on the consumer's hot path, and two
indexes as big as the table. They become partial indexes on `status = 'unrated'`, without the
status column (every entry has the same).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = "status = 'unrated'"


def upgrade() -> None:
    op.drop_index("ix_rater_call_extension", table_name="rater_call")
    op.drop_index("ix_rater_call_waiting", table_name="rater_call")
    where = sa.text(WAITING)
    op.create_index(
        "ix_rater_call_waiting", "rater_call", ["tenant", "reason", "id"], sqlite_where=where, postgresql_where=where
    )
    op.create_index(
        "ix_rater_call_extension", "rater_call", ["tenant", "extension"], sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    op.drop_index("ix_rater_call_extension", table_name="rater_call")
    op.drop_index("ix_rater_call_waiting", table_name="rater_call")
    op.create_index("ix_rater_call_waiting", "rater_call", ["tenant", "status", "reason", "id"])
    op.create_index("ix_rater_call_extension", "rater_call", ["tenant", "status", "extension"])
