"""Inbox and outbox: the two tables that make at-least-once delivery behave as exactly-once.

- The inbox records which event ids a consumer group has processed, in the same transaction as
  the handler's changes, so a redelivered event is a no-op.
- The outbox holds events to publish, written in the same transaction as the change that
  caused them; a relay publishes them. No event for a rolled-back change, none lost while the
  broker is down.

Every service's first migration creates both tables with `create_messaging_tables()`.

Writing the outbox is on every hot path, so `stage_messages` goes to the driver without
SQLAlchemy's per-row compile and bind processing, and hands the ids of the new rows back: the
`OutboxHandoff` of the process's relay keeps the records it just wrote by those ids, so the
relay sends them without reading them back from the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from opentelemetry import propagate, trace
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common.db import StagedCopy
from tarifa_common.events import (
    CONTENT_TYPE,
    SPECVERSION,
    TENANT_HEADER,
    Event,
    KafkaRecord,
    binary_headers,
    ce_time,
    dumps,
    utcnow,
)


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
    headers: str = Field(sa_type=sa.Text, description="the Kafka headers, as `headers_text` writes them")
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


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One event as a unit of work writes it to the outbox: its row, and the record the relay sends."""

    event_id: str
    item: tuple[str, KafkaRecord]  # (topic, record), as `Publisher.send_many` takes it: built once
    headers: str | None = None  # the row's `headers` column, when written with the record; else made from it

    @property
    def topic(self) -> str:
        return self.item[0]

    @property
    def record(self) -> KafkaRecord:
        return self.item[1]

    @property
    def headers_column(self) -> str:
        return self.headers if self.headers is not None else headers_text(self.item[1].headers)


def outbox_message(event: Event, topic: str, key: str | None, data: bytes | None = None) -> OutboxMessage:
    """The outbox message for `event`, carrying the current trace context (`data`: its data already serialised).

    Without a valid current span the W3C propagator writes no `traceparent`, so none is asked for.
    The record's headers and the row's header text are written together, from what is the same for
    every event of the (source, type, tenant) and the few attributes of this event.
    """
    if not event.traceparent and trace.get_current_span().get_span_context().is_valid:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier.get("traceparent"):
            event = event.with_trace(carrier["traceparent"], carrier.get("tracestate"))
    time = ce_time(event.time)
    headers = binary_headers(event, time)
    constant = (event.source, event.type, event.tenant)
    template = _TEXT_TEMPLATES.get(constant)
    if template is None:
        template = (
            f"{_SEPARATOR}ce_source{_SEPARATOR}{event.source}{_SEPARATOR}ce_type{_SEPARATOR}{event.type}"
            f"{_SEPARATOR}ce_specversion{_SEPARATOR}{SPECVERSION}{_SEPARATOR}ce_time{_SEPARATOR}",
            f"{_SEPARATOR}content-type{_SEPARATOR}{CONTENT_TYPE}{_SEPARATOR}{TENANT_HEADER}{_SEPARATOR}{event.tenant}",
        )
        if len(_TEXT_TEMPLATES) < _TEXT_TEMPLATES_MAX:
            _TEXT_TEMPLATES[constant] = template
    middle, tail = template
    text = _ID_PREFIX + event.id + middle + time + tail
    if event.subject is not None:
        text += _SUBJECT_PREFIX + event.subject
    if event.traceparent:
        text += _TRACEPARENT_PREFIX + event.traceparent
    if event.tracestate:
        text += _TRACESTATE_PREFIX + event.tracestate
    if text.count(_SEPARATOR) != 2 * len(headers) or "\x00" in text:
        text = headers_text(headers)  # a value the cheap form cannot hold: the JSON form
    if data is None:
        data = dumps(event.data)
    return OutboxMessage(event.id, (topic, KafkaRecord(key.encode() if key is not None else None, data, headers)), text)


# The `headers` column: "\x1fname\x1fvalue" for each header, one join of bytes to write and one split
# to read, where a JSON list of pairs cost a json.dumps per row. A header whose name or value holds
# \x1f (or NUL, which PostgreSQL's text refuses) is written in the JSON form instead; the JSON form
# (what rows written before this change hold) starts with "[" and is still read.
_SEPARATOR = "\x1f"
_NAMES: dict[str, bytes] = {}
# `outbox_message` writes the column from these: the text of the headers every event of one
# (source, type, tenant) shares, around its id and time (a test holds it equal to `headers_text`).
_TEXT_TEMPLATES: dict[tuple[str, str, str], tuple[str, str]] = {}
_TEXT_TEMPLATES_MAX = 4096
_ID_PREFIX = f"{_SEPARATOR}ce_id{_SEPARATOR}"
_SUBJECT_PREFIX = f"{_SEPARATOR}ce_subject{_SEPARATOR}"
_TRACEPARENT_PREFIX = f"{_SEPARATOR}traceparent{_SEPARATOR}"
_TRACESTATE_PREFIX = f"{_SEPARATOR}tracestate{_SEPARATOR}"


def headers_text(headers: Sequence[tuple[str, bytes]]) -> str:
    """Kafka headers as the outbox's `headers` column holds them (`parse_headers` reads them back)."""
    parts = [b""]
    for name, value in headers:
        raw = _NAMES.get(name)
        if raw is None:
            raw = name.encode()
            if len(_NAMES) < 64:  # header names are a handful of constants; never let the cache grow
                _NAMES[name] = raw
        parts.append(raw)
        parts.append(value)
    text = b"\x1f".join(parts).decode()
    if text.count(_SEPARATOR) != 2 * len(headers) or "\x00" in text:
        return json.dumps([[name, value.decode()] for name, value in headers])
    return text


def parse_headers(text: str) -> list[tuple[str, bytes]]:
    """The Kafka headers held in an outbox row's `headers` column, in either form."""
    if text.startswith("["):
        return [(name, value.encode()) for name, value in json.loads(text)]
    parts = text.split(_SEPARATOR)
    return [(parts[i], parts[i + 1].encode()) for i in range(1, len(parts), 2)]


_SQLITE_INSERT = (
    "INSERT INTO tarifa_outbox (topic, event_id, key, value, headers, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
# In the order of the messages: ids drawn from the sequence in that order, so the sorted ids are the
# messages' ids in order (what SQLAlchemy's own "insertmanyvalues" relies on to match RETURNING rows).
_POSTGRES_INSERT = StagedCopy(
    "tarifa_outbox",
    ("topic", "event_id", "key", "value", "headers"),
    extra=(("created_at", "$1"),),
    ordered=True,
    tail=" RETURNING id",
)


async def stage_messages(session: AsyncSession, messages: Sequence[OutboxMessage]) -> list[int]:
    """Insert outbox rows for `messages` in the session's transaction, in order; return their ids, in order.

    One `created_at` for the lot. SQLite: one DBAPI executemany, then `last_insert_rowid()`; the
    ids are consecutive because the transaction holds SQLite's write lock from its first insert and
    a table without AUTOINCREMENT gives each new row max(id) + 1 (with AUTOINCREMENT, the sequence
    + 1: consecutive as well). PostgreSQL: COPY then one INSERT … SELECT … RETURNING id (`StagedCopy`).
    """
    if not messages:
        return []
    connection = await session.connection()
    dialect = connection.dialect
    created_at = utcnow()
    if dialect.name == "postgresql":
        rows = [(m.topic, m.event_id, m.record.key, m.record.value, m.headers_column) for m in messages]
        return sorted(id_ for (id_,) in await _POSTGRES_INSERT.run(connection, rows, (created_at,)))
    # SQLite's DATETIME is text in SQLAlchemy's format: made by its own bind processor, once.
    column_type = OutboxEntry.__table__.c.created_at.type  # type: ignore[attr-defined]
    bind = column_type.dialect_impl(dialect).bind_processor(dialect)
    created = bind(created_at) if bind is not None else created_at
    await connection.exec_driver_sql(
        _SQLITE_INSERT,
        [(m.topic, m.event_id, m.record.key, m.record.value, m.headers_column, created) for m in messages],
    )
    last = int((await connection.exec_driver_sql("SELECT last_insert_rowid()")).scalar_one())
    return list(range(last - len(messages) + 1, last + 1))


class OutboxHandoff:
    """The records a process wrote to its outbox, by row id, for its relay: what it need not read back.

    A unit of work holds its messages here as soon as their rows are inserted (before the commit,
    so that the relay, which may read the committed rows before the committing task runs again,
    always finds them) and withdraws them if its transaction fails. An entry only ever saves a
    read: the relay matches it to a row by id, topic and event id (SQLite reuses the ids of deleted
    rows), reads from the table every row it holds nothing for, and may drop any entry at any time.
    At most `limit` entries; beyond that, rows are read from the table.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._held: dict[int, OutboxMessage] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, ids: Sequence[int], messages: Sequence[OutboxMessage]) -> list[int]:
        """Keep `messages` (whose rows have `ids`) while there is room; return the ids kept."""
        room = self.limit - len(self._held)
        if room <= 0:
            return []
        kept = list(ids[:room])
        self._held.update(zip(kept, messages, strict=False))
        return kept

    def forget(self, ids: Iterable[int]) -> None:
        """Drop entries: rows sent, or rows of a transaction that did not commit."""
        held = self._held
        for id_ in ids:
            held.pop(id_, None)

    def item(self, id_: int, topic: str, event_id: str) -> tuple[str, KafkaRecord] | None:
        """The (topic, record) held for the row (`id_`, `topic`, `event_id`), if any."""
        message = self._held.get(id_)
        if message is None or message.event_id != event_id or message.item[0] != topic:
            return None
        return message.item

    def forget_below(self, id_: int) -> None:
        """Drop the oldest entries whose ids are below `id_`: rows that another relay took or deleted.

        Looks from the oldest entry and stops at the first at or above `id_`, so it costs nothing
        when the relay is in step; an entry it misses stays harmless until the bound pushes it out.
        """
        held = self._held
        stale = []
        for key in held:
            if key >= id_:
                break
            stale.append(key)
        for key in stale:
            del held[key]

    def clear(self) -> None:
        self._held.clear()


class _HasHeaders(Protocol):
    @property
    def headers(self) -> str: ...


def outbox_headers(entry: _HasHeaders) -> list[tuple[str, bytes]]:
    """The Kafka headers of an outbox row (an `OutboxEntry`, or a row of its columns)."""
    return parse_headers(entry.headers)


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
