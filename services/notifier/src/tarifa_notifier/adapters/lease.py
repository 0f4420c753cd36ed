"""A lease row with an expiry: which notifier replica runs the loops that must run once (SQLite and PostgreSQL).

Chosen over a PostgreSQL advisory lock because it works the same on SQLite (embedded mode, and
two processes on one file), it is taken inside the transaction of the work it guards (a replica
whose lease lapsed cannot commit a decision: its conditional UPDATE matches nothing), and an
operator can read who holds it (`SELECT * FROM notifier_lease`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_notifier.adapters.tables import LeaseRow


class SqlLease:
    """Held by `holder` until `expires_at`; taken over by another once it has expired."""

    def __init__(self, name: str, holder: str, ttl: timedelta) -> None:
        self.name, self.holder, self.ttl = name, holder, ttl

    async def hold(self, session: AsyncSession, now: datetime) -> bool:
        """Take or renew the lease in this transaction; True if this replica holds it until `now + ttl`.

        One conditional UPDATE (mine, or expired), else an INSERT that a concurrent one makes a
        no-op: of two replicas racing, exactly one gets a row. On PostgreSQL the row stays locked
        until the transaction ends, so a takeover waits for the holder's work to commit.
        """
        renewed = await session.exec(
            sa.update(LeaseRow)
            .where(
                col(LeaseRow.name) == self.name,
                sa.or_(col(LeaseRow.holder) == self.holder, col(LeaseRow.expires_at) < now),
            )
            .values(holder=self.holder, expires_at=now + self.ttl)
        )
        if renewed.rowcount:
            return True
        postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
        insert = postgresql.insert if postgres else sqlite.insert
        created = await session.exec(
            insert(LeaseRow)
            .values(name=self.name, holder=self.holder, expires_at=now + self.ttl)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return bool(created.rowcount)

    async def holder_of(self, session: AsyncSession) -> tuple[str, datetime] | None:
        row = await session.get(LeaseRow, self.name)
        return (row.holder, row.expires_at) if row is not None else None
