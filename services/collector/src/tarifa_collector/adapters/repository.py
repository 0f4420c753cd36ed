"""SQL storage of the collector: `SqlCollectorStore` (the handlers' port) and source configuration."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_collector.adapters.tables import ArchivedRecord, CallRow, SourceRow, SourceStateRow
from tarifa_collector.domain.numbering import NumberingPlan
from tarifa_collector.domain.operator_csv import ColumnMapping
from tarifa_collector.domain.records import PublishableCall
from tarifa_collector.domain.sources import (
    AfterImport,
    Connection,
    RecordFormat,
    SourceKind,
    SourceSettings,
    SourceState,
)
from tarifa_collector.handlers import NewArchiveRecord
from tarifa_common.contracts import Direction
from tarifa_common.db import sqlite_datetime
from tarifa_common.errors import Conflict, NotFound

# SQLite allows 32766 bound parameters per statement; asyncpg 32767. Chunks stay well below: a
# batch of SMDR calls (about 7,000) asks for its earlier legs in two queries, not fourteen.
_IN_CHUNK = 5000
# Archive rows per INSERT on SQLite: 7 parameters each, 28,000 in all.
_ARCHIVE_ROWS = 4000
_ARCHIVE_INSERT = "INSERT INTO collector_archive (id, tenant, source_id, received_at, call_id, call_record_id, raw)"
_CALL_SQL = (
    "INSERT INTO collector_call (record_id, tenant, source_id, started_at, collected_at, payload)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (record_id) DO NOTHING"
)


@functools.lru_cache(maxsize=8)
def _archive_sql(rows: int) -> str:
    """One multi-row INSERT of `rows` archive records that returns the ids it inserted (sqlite3's
    `executemany` cannot return rows); full chunks share one text, so one prepared statement."""
    values = " VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)  # placeholders only: the values are bound
    return _ARCHIVE_INSERT + values + " ON CONFLICT (id) DO NOTHING RETURNING id"


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class SqlCollectorStore:
    """The handlers' storage, in the unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._states: dict[tuple[str, str], SourceStateRow] = {}

    async def pending_legs(self, tenant: str, source_id: str, call_ids: Collection[str]) -> list[str]:
        raws: list[str] = []
        wanted = list(call_ids)
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            result = await self.session.exec(
                select(ArchivedRecord.raw).where(
                    ArchivedRecord.tenant == tenant,
                    ArchivedRecord.source_id == source_id,
                    col(ArchivedRecord.call_record_id).is_(None),
                    col(ArchivedRecord.call_id).in_(chunk),
                )
            )
            raws += result.all()
        return raws

    async def stale_pending_legs(self, tenant: str, source_id: str, received_before: datetime) -> list[str]:
        result = await self.session.exec(
            select(ArchivedRecord.raw).where(
                ArchivedRecord.tenant == tenant,
                ArchivedRecord.source_id == source_id,
                col(ArchivedRecord.call_record_id).is_(None),
                col(ArchivedRecord.received_at) < received_before,
            )
        )
        return list(result.all())

    @property
    def _dialect(self) -> str:
        return self.session.bind.dialect.name if self.session.bind is not None else "sqlite"

    def _insert(self, table: type[SQLModel]) -> Any:
        insert: Any = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        return insert(table)

    async def archive(
        self, tenant: str, source_id: str, received_at: datetime, records: Sequence[NewArchiveRecord]
    ) -> set[str]:
        if not records:
            return set()
        connection = await self.session.connection()
        if self._dialect == "sqlite":
            # The hot path of every link: plain SQL with the values as SQLAlchemy would bind them
            # (no statement compilation, no bind processor per row and column).
            received = sqlite_datetime(received_at)
            inserted: set[str] = set()
            for start in range(0, len(records), _ARCHIVE_ROWS):
                chunk = records[start : start + _ARCHIVE_ROWS]
                values: list[str | None] = []
                for r in chunk:
                    values += (r.id, tenant, source_id, received, r.call_id, r.call_record_id, r.raw)
                result = await connection.exec_driver_sql(_archive_sql(len(chunk)), tuple(values))
                inserted.update(row[0] for row in result)
            return inserted
        statement = (
            self._insert(ArchivedRecord).on_conflict_do_nothing(index_elements=["id"]).returning(col(ArchivedRecord.id))
        )
        rows = [
            {
                "id": r.id,
                "tenant": tenant,
                "source_id": source_id,
                "received_at": received_at,
                "call_id": r.call_id,
                "call_record_id": r.call_record_id,
                "raw": r.raw,
            }
            for r in records
        ]
        result = await connection.execute(statement, rows)
        return set(result.scalars().all())

    async def assign_call(self, leg_ids: Collection[str], call_record_id: str) -> None:
        await (await self.session.connection()).execute(
            sa.update(ArchivedRecord)
            .where(col(ArchivedRecord.id).in_(list(leg_ids)))
            .values(call_record_id=call_record_id)
        )

    async def save_calls(self, calls: Sequence[tuple[PublishableCall, bytes]], collected_at: datetime) -> None:
        if not calls:
            return
        connection = await self.session.connection()
        if self._dialect == "sqlite":
            collected = sqlite_datetime(collected_at)
            await connection.exec_driver_sql(
                _CALL_SQL,
                [
                    (
                        call.record_id,
                        call.tenant,
                        call.source_id,
                        sqlite_datetime(call.started_at),
                        collected,
                        payload.decode(),
                    )
                    for call, payload in calls
                ],
            )
            return
        await connection.execute(
            self._insert(CallRow).on_conflict_do_nothing(index_elements=["record_id"]),
            [
                {
                    "record_id": call.record_id,
                    "tenant": call.tenant,
                    "source_id": call.source_id,
                    "started_at": call.started_at,
                    "collected_at": collected_at,
                    "payload": payload.decode(),
                }
                for call, payload in calls
            ],
        )

    async def state(self, tenant: str, source_id: str) -> SourceState:
        key = (tenant, source_id)
        row = self._states.get(key)
        if row is None:
            # Create the row if missing without racing another writer, then lock it for this
            # transaction: two connections of one PBX (or two replicas) must not lose counts.
            defaults = SourceStateRow(tenant=tenant, source_id=source_id).model_dump()
            await (await self.session.connection()).execute(
                self._insert(SourceStateRow)
                .values(**defaults)
                .on_conflict_do_nothing(index_elements=["tenant", "source_id"])
            )
            row = await self.session.get(SourceStateRow, key, with_for_update=True, populate_existing=True)
            assert row is not None
        self._states[(tenant, source_id)] = row
        return SourceState(
            tenant=tenant,
            source_id=source_id,
            connection=Connection(row.connection),
            peer=row.peer,
            connection_changed_at=_aware(row.connection_changed_at),
            last_record_at=_aware(row.last_record_at),
            last_call_start=_aware(row.last_call_start),
            day=row.day,
            records_today=row.records_today,
            rejects_today=row.rejects_today,
            records_total=row.records_total,
            rejects_total=row.rejects_total,
            silent_alert=row.silent_alert,
            link_alert=row.link_alert,
            last_error=row.last_error,
        )

    async def save_state(self, state: SourceState) -> None:
        row = self._states.get((state.tenant, state.source_id))
        if row is None:
            await self.state(state.tenant, state.source_id)
            row = self._states[(state.tenant, state.source_id)]
        for name, value in dataclasses.asdict(state).items():
            setattr(row, name, value.value if isinstance(value, Connection) else value)
        await self.session.flush()

    async def calls_between(
        self,
        tenant: str,
        source_id: str,
        start: datetime,
        end: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[PublishableCall]:
        query = select(CallRow.payload, CallRow.started_at).where(
            CallRow.tenant == tenant,
            CallRow.source_id == source_id,
            col(CallRow.started_at) >= start,
            col(CallRow.started_at) < end,
        )
        if after is not None:
            query = query.where(
                sa.or_(
                    col(CallRow.started_at) > after[0],
                    sa.and_(col(CallRow.started_at) == after[0], col(CallRow.record_id) > after[1]),
                )
            )
        query = query.order_by(col(CallRow.started_at), col(CallRow.record_id)).limit(limit)
        calls = []
        for payload, started_at in (await self.session.exec(query)).all():
            data = json.loads(payload)
            calls.append(
                PublishableCall(
                    record_id=data["record_id"],
                    tenant=tenant,
                    source_id=source_id,
                    call_id=data["call_id"],
                    started_at=_aware(started_at) or started_at,
                    data=data,
                )
            )
        return calls

    async def count_calls(self, tenant: str, source_id: str, start: datetime, end: datetime) -> int:
        query = (
            select(sa.func.count())
            .select_from(CallRow)
            .where(
                CallRow.tenant == tenant,
                CallRow.source_id == source_id,
                col(CallRow.started_at) >= start,
                col(CallRow.started_at) < end,
            )
        )
        return int((await self.session.exec(query)).one())


def settings_of(row: SourceRow) -> SourceSettings:
    return SourceSettings(
        id=row.id,
        kind=SourceKind(row.kind),
        format=RecordFormat(row.format),
        time_zone=row.time_zone,
        host=row.host,
        port=row.port,
        directory=row.directory,
        after_import=AfterImport(row.after_import),
        quiet_minutes=row.quiet_minutes,
        enabled=row.enabled,
        schedule=row.schedule,
        column_mapping=mapping_from_json(row.column_mapping),
        numbering=numbering_from_json(row.numbering),
        integration_id=row.integration_id,
    )


def numbering_to_json(plan: NumberingPlan | None) -> str | None:
    if plan is None:
        return None
    values = dataclasses.asdict(plan)
    values["subscriber_digits"] = list(plan.subscriber_digits)
    return json.dumps(values)


def numbering_from_json(text: str | None) -> NumberingPlan | None:
    if not text:
        return None
    values = json.loads(text)
    values["subscriber_digits"] = tuple(values["subscriber_digits"])
    return NumberingPlan(**values)


def mapping_to_json(mapping: ColumnMapping | None) -> str | None:
    if mapping is None:
        return None
    return json.dumps(
        {
            "columns": mapping.columns,
            "delimiter": mapping.delimiter,
            "date_format": mapping.date_format,
            "header": mapping.header,
            "default_direction": mapping.default_direction.value,
        }
    )


def mapping_from_json(text: str | None) -> ColumnMapping | None:
    if not text:
        return None
    data = json.loads(text)
    return ColumnMapping(
        columns={str(k): int(v) for k, v in data["columns"].items()},
        delimiter=data["delimiter"],
        date_format=data["date_format"],
        header=data["header"],
        default_direction=Direction(data["default_direction"]),
    )


class SqlSourceRepository:
    """Source configuration per tenant."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, tenant: str, source: SourceSettings, now: datetime) -> SourceRow:
        if await self.session.get(SourceRow, (tenant, source.id)) is not None:
            raise Conflict(f"source {source.id!r} exists already; choose another id or change it with PUT")
        if source.kind is SourceKind.SMDR_LISTENER:
            clash = await self.session.exec(
                select(SourceRow).where(SourceRow.kind == SourceKind.SMDR_LISTENER.value, SourceRow.port == source.port)
            )
            other = clash.first()
            if other is not None:
                raise Conflict(f"port {source.port} is taken by the listener of source {other.id!r}; choose another")
        row = SourceRow(
            tenant=tenant,
            id=source.id,
            kind=source.kind.value,
            format=source.format.value,
            host=source.host,
            port=source.port,
            directory=source.directory,
            after_import=source.after_import.value,
            time_zone=source.time_zone,
            quiet_minutes=source.quiet_minutes,
            enabled=source.enabled,
            schedule=source.schedule,
            column_mapping=mapping_to_json(source.column_mapping),
            numbering=numbering_to_json(source.numbering),
            integration_id=source.integration_id,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        return row

    async def delete(self, tenant: str, source_id: str) -> None:
        """Remove a source's configuration and health; its archive and calls stay."""
        row = await self.get(tenant, source_id)
        state = await self.session.get(SourceStateRow, (tenant, source_id))
        if state is not None:
            await self.session.delete(state)
        await self.session.delete(row)
        await self.session.flush()

    async def get(self, tenant: str, source_id: str) -> SourceRow:
        row = await self.session.get(SourceRow, (tenant, source_id))
        if row is None:
            raise NotFound(f"source {source_id!r} does not exist for tenant {tenant!r}")
        return row

    async def list(self, tenant: str | None = None) -> list[SourceRow]:
        query = select(SourceRow).order_by(col(SourceRow.tenant), col(SourceRow.id))
        if tenant is not None:
            query = query.where(SourceRow.tenant == tenant)
        return list((await self.session.exec(query)).all())

    async def states(self, tenant: str) -> dict[str, SourceStateRow]:
        rows = await self.session.exec(select(SourceStateRow).where(SourceStateRow.tenant == tenant))
        return {row.source_id: row for row in rows.all()}
