"""Inbox and outbox: the two tables that make at-least-once delivery behave as exactly-once.

- The inbox records which event ids a consumer group has processed, in the same transaction as
  the handler's changes, so a redelivered event is a no-op.
- The outbox holds events to publish, written in the same transaction as the change that
  caused them; a relay publishes them. No event for a rolled-back change, none lost while the
  broker is down.

Every service's first migration creates both tables with `create_messaging_tables()`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from opentelemetry import propagate
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common.events import Event, encode, encode_serialised, utcnow


class InboxEntry(SQLModel, table=True):
    __tablename__ = "tarifa_inbox"

    consumer: str = Field(primary_key=True, max_length=100)
    event_id: str = Field(primary_key=True, max_length=100)
    event_type: str = Field(max_length=200)
    processed_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class OutboxEntry(SQLModel, table=True):
    __tablename__ = "tarifa_outbox"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=200)
    event_id: str = Field(max_length=100)
    key: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    value: bytes = Field(sa_type=sa.LargeBinary)
    headers: str = Field(sa_type=sa.Text, description="JSON list of [name, value] pairs")
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


# Rows per INSERT statement: well under SQLite's and asyncpg's bound-parameter limits.
_CHUNK = 1000


async def claim_many(session: AsyncSession, consumer: str, events: Sequence[Event]) -> set[str]:
    """Record that `consumer` processes `events`; return the ids it had not processed before.

    One `INSERT … ON CONFLICT DO NOTHING RETURNING` per chunk: a redelivered event is simply not
    returned. An id repeated within `events` is returned once.
    """
    insert = _insert(session)
    connection = await session.connection()
    fresh: set[str] = set()
    now = utcnow()
    unique = list({event.id: event for event in events}.values())
    statement = (
        insert(InboxEntry)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(InboxEntry.__table__.c.event_id)  # type: ignore[attr-defined]
    )
    for start in range(0, len(unique), _CHUNK):
        rows = [
            {"consumer": consumer, "event_id": e.id, "event_type": e.type, "processed_at": now}
            for e in unique[start : start + _CHUNK]
        ]
        # executemany form: SQLAlchemy's "insertmanyvalues" batches it with RETURNING and caches the
        # compiled statement; a `.values(rows)` literal would be compiled anew for every batch.
        fresh.update((await connection.execute(statement, rows)).scalars())
    return fresh


def outbox_row(event: Event, topic: str, key: str | None, data: bytes | None = None) -> dict[str, Any]:
    """The outbox row for `event`, carrying the current trace context (`data`: its data already serialised)."""
    if not event.traceparent:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier.get("traceparent"):
            event = event.with_trace(carrier["traceparent"], carrier.get("tracestate"))
    record = encode(event, key) if data is None else encode_serialised(event, key, data)
    return {
        "topic": topic,
        "event_id": event.id,
        "key": record.key,
        "value": record.value,
        "headers": json.dumps([[name, value.decode()] for name, value in record.headers]),
        "created_at": utcnow(),
    }


async def stage_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert outbox rows (from `outbox_row`) in the session's transaction, in order."""
    connection = await session.connection()
    for start in range(0, len(rows), _CHUNK):
        await connection.execute(sa.insert(OutboxEntry), list(rows[start : start + _CHUNK]))


def outbox_rows(items: Sequence[tuple[Event, str, str | None]]) -> list[dict[str, Any]]:
    """Outbox rows for many events, in order, for one multi-row INSERT into `tarifa_outbox`."""
    return [outbox_row(event, topic, key) for event, topic, key in items]


class _HasHeaders(Protocol):
    @property
    def headers(self) -> str: ...


def outbox_headers(entry: _HasHeaders) -> list[tuple[str, bytes]]:
    """The Kafka headers of an outbox row (an `OutboxEntry`, or a row of its columns)."""
    return [(name, value.encode()) for name, value in json.loads(entry.headers)]


def create_messaging_tables() -> None:
    """Create the inbox and outbox tables; call from a service's first Alembic revision."""
    from alembic import op

    op.create_table(
        "tarifa_inbox",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(100), primary_key=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tarifa_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(100), nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def drop_messaging_tables() -> None:
    from alembic import op

    op.drop_table("tarifa_outbox")
    op.drop_table("tarifa_inbox")
