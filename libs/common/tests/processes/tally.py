"""A tiny table that test handlers write to, so a test can count real side effects."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Field, SQLModel, func, select

from tarifa_common.events import Event
from tarifa_common.messaging import InboxEntry, OutboxEntry
from tarifa_common.unit_of_work import UnitOfWork


class Tally(SQLModel, table=True):
    __tablename__ = "test_tally"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str
    note: str = ""


async def create_tables(engine: AsyncEngine) -> None:
    tables = [InboxEntry.__table__, OutboxEntry.__table__, Tally.__table__]
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: SQLModel.metadata.create_all(sync, tables=tables))  # type: ignore[arg-type]


async def record(event: Event, uow: UnitOfWork) -> None:
    """The handler: one row per handled event."""
    uow.session.add(Tally(event_id=event.id, note=str(event.data.get("note", ""))))


async def count(engine: AsyncEngine, event_id: str | None = None) -> int:
    from sqlmodel.ext.asyncio.session import AsyncSession

    async with AsyncSession(engine) as session:
        query = select(func.count()).select_from(Tally)
        if event_id is not None:
            query = query.where(sa.column("event_id") == event_id)
        return int((await session.exec(query)).one())
