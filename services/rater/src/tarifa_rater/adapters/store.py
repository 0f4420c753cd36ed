"""The SQL store: the handlers' `RaterStore` port on SQLModel tables, and the writes of the API and CLI.

A tenant's rating context (plans, directory, numbering, holidays) is cached per process and
checked against the tenant's state token on every use: any change of tariffs or directory, by
any process, writes a new random token in the same transaction, so a cache is never stale
after a commit and never trusts a rolled-back change.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common.db import StagedCopy, sqlite_datetime
from tarifa_common.events import utcnow
from tarifa_rater.adapters import retries
from tarifa_rater.adapters.tables import (
    UNRATED_ONLY,
    AliasRow,
    AllowanceRow,
    CallRow,
    ExtensionRow,
    HolidayRow,
    LineUsageRow,
    Money,
    NumberingRow,
    PlanAssignmentRow,
    RateRow,
    RatingRow,
    TariffPlanRow,
    TenantStateRow,
    UtcDateTime,
)
from tarifa_rater.domain.allowances import Usage
from tarifa_rater.domain.numbering import CallClass, NumberingPlan
from tarifa_rater.domain.pricing import Rate, TimeBands
from tarifa_rater.domain.rating import DirectoryEntry
from tarifa_rater.domain.tariffs import PlanBook, RateEntry, TariffPlan
from tarifa_rater.handlers import RATED, Allowance, CallState, RatingContext, RerateScope, Waiting

CALL_FIELDS = tuple(f.name for f in dataclasses.fields(CallState))
NEW_CALL_FIELDS = tuple(name for name in CALL_FIELDS if name != "id")
CHUNK = 1000  # rows per statement: well under SQLite's and asyncpg's bound-parameter limits


_new_call_values = operator.attrgetter(*NEW_CALL_FIELDS)


class ContextCache:
    """Rating contexts by tenant, each with the state token it was loaded under."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, RatingContext]] = {}


class BulkInsert:
    """A multi-row INSERT of one table's columns, for rows of plain values the driver takes as they are.

    SQLite: with `returning`, `INSERT … VALUES (?, …), (?, …) … RETURNING` over pieces of a
    power-of-two number of rows (under SQLite's 32,766 bound parameters), so that the driver's
    statement cache holds a few statements, not one of several megabytes per batch size;
    without, one single-row statement through the driver's executemany. Aware datetimes are
    written in SQLAlchemy's SQLite storage format (UTC, `YYYY-MM-DD HH:MM:SS.ffffff`, what the
    ORM reads back and compares), money as text.
    PostgreSQL: binary COPY into a staging table, then one `INSERT … SELECT` (`StagedCopy`),
    native datetimes and Decimals.
    `conflict` names the unique key whose duplicates are skipped; `returning`, the columns the
    statement answers for each row it inserted.
    """

    def __init__(
        self,
        dialect: str,
        table: sa.Table,
        columns: Sequence[str],
        *,
        conflict: Sequence[str] = (),
        returning: Sequence[str] = (),
    ) -> None:
        self.dialect = dialect
        self.columns = tuple(columns)
        types = [table.c[name].type for name in self.columns]
        self._times = tuple(i for i, t in enumerate(types) if isinstance(t, UtcDateTime))
        self._money = tuple(i for i, t in enumerate(types) if isinstance(t, Money))
        self._last_times: dict[int, tuple[datetime, str]] = {}
        tail = ""
        if conflict:
            tail += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
        if returning:
            tail += f" RETURNING {', '.join(returning)}"
        self._returning = bool(returning)
        head = f"INSERT INTO {table.name} ({', '.join(self.columns)})"
        self._head, self._tail = head, tail
        self._values = "(" + ", ".join("?" * len(self.columns)) + ")"
        self._pieces: dict[int, str] = {}
        self._largest = 1 << ((32_000 // len(self.columns)).bit_length() - 1)  # rows per SQLite statement
        self._copy = StagedCopy(table.name, self.columns, tail=tail) if dialect == "postgresql" else None

    def row(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """`values` (in `columns` order, Python values) as this database's driver takes them."""
        if self.dialect == "postgresql" or not (self._times or self._money):
            return values
        row = list(values)
        last = self._last_times
        for i in self._times:
            moment = row[i]
            if moment is not None:
                known = last.get(i)
                if known is not None and known[0] is moment:  # a batch's calls share their `rated_at`
                    row[i] = known[1]
                else:
                    row[i] = text = sqlite_datetime(moment)
                    last[i] = (moment, text)
        for i in self._money:
            if row[i] is not None:
                row[i] = str(row[i])
        return tuple(row)

    async def run(self, connection: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Insert `rows` (from `row`); return the `returning` columns of each row inserted."""
        if self._copy is not None:
            return [tuple(row) for row in await self._copy.run(connection, rows)]
        found: list[tuple[Any, ...]] = []
        if not self._returning:
            if rows:
                await connection.exec_driver_sql(f"{self._head} VALUES {self._values}{self._tail}", list(rows))
        else:
            start = 0
            while start < len(rows):
                size = min(self._largest, 1 << ((len(rows) - start).bit_length() - 1))
                piece = rows[start : start + size]
                parameters = tuple(itertools.chain.from_iterable(piece))  # in C: half the 0.6 µs a row of a generator
                found += map(tuple, (await connection.exec_driver_sql(self._piece(size), parameters)).all())
                start += size
        return found

    def _piece(self, size: int) -> str:
        sql = self._pieces.get(size)
        if sql is None:
            sql = self._pieces[size] = f"{self._head} VALUES {', '.join([self._values] * size)}{self._tail}"
        return sql


_BULK: dict[str, tuple[BulkInsert, BulkInsert]] = {}
RATING_FIELDS = (
    "tenant",
    "record_id",
    "version",
    "amount",
    "previous_amount",
    "cost_amount",
    "plan",
    "rate",
    "cause",
    "rated_at",
)


def _bulk_inserts(dialect: str) -> tuple[BulkInsert, BulkInsert]:
    """The inserts of new calls and of their ratings on `dialect`, built once per process."""
    inserts = _BULK.get(dialect)
    if inserts is None:
        calls = BulkInsert(
            dialect,
            CallRow.__table__,  # type: ignore[attr-defined]
            NEW_CALL_FIELDS,
            conflict=("tenant", "record_id"),
            returning=("tenant", "record_id"),
        )
        ratings = BulkInsert(dialect, RatingRow.__table__, RATING_FIELDS)  # type: ignore[attr-defined]
        inserts = _BULK[dialect] = (calls, ratings)
    return inserts


def call_values(call: CallState) -> tuple[Any, ...]:
    """A new call's column values, in `NEW_CALL_FIELDS` order."""
    return _new_call_values(call)


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def _execute(session: AsyncSession, statement: Any) -> Any:
    return await (await session.connection()).execute(statement)


UPDATED_FIELDS = tuple(name for name in CALL_FIELDS if name not in ("id", "cdr", "tenant", "record_id"))
_updated_values = operator.attrgetter(*UPDATED_FIELDS)
_NEW_NAMES = tuple(f"new_{name}" for name in UPDATED_FIELDS)  # their bound parameters (not column names)


@functools.cache
def _call_writes() -> tuple[sa.Update, sa.Insert]:
    """The update of a call's state and the insert of a rating row, with bound parameters, built once.

    The same statement objects each time, so SQLAlchemy compiles them once (its statement cache);
    the columns' own types still convert each value (datetimes, Decimal money), as before.
    """
    calls = CallRow.__table__  # type: ignore[attr-defined]
    update = (
        sa.update(calls)
        .where(calls.c.id == sa.bindparam("call_row_id"))
        .values({name: sa.bindparam(f"new_{name}") for name in UPDATED_FIELDS})
    )
    return update, sa.insert(RatingRow.__table__)  # type: ignore[attr-defined]


async def touch(session: AsyncSession, tenant: str) -> None:
    """Mark the tenant's tariffs or directory as changed (caches reload on their next use)."""
    token = uuid.uuid4().hex
    session.info.setdefault("rater_tokens", {})[tenant] = token
    statement = (
        _insert(session)(TenantStateRow)
        .values(tenant=tenant, token=token)
        .on_conflict_do_update(index_elements=["tenant"], set_={"token": token})
    )
    await _execute(session, statement)


def classes_of(text: str | None) -> frozenset[CallClass] | None:
    if text is None:
        return None
    return frozenset(CallClass(part) for part in text.split(",") if part)


def entry_of(row: ExtensionRow) -> DirectoryEntry:
    return DirectoryEntry(
        extension=row.extension,
        line_id=row.line_id,
        customer_id=row.customer_id,
        contract_id=row.contract_id,
        cost_centre=row.cost_centre,
        department=row.department,
        allowed_classes=classes_of(row.allowed_classes),
    )


def rate_entry_of(row: RateRow) -> RateEntry:
    rate = Rate(
        name=row.destination,
        price_per_minute=row.price_per_minute,
        reduced_price_per_minute=row.reduced_price_per_minute,
        connect_fee=row.connect_fee,
        cost_per_minute=row.cost_per_minute,
        first_increment=row.first_increment,
        next_increment=row.next_increment,
        minimum_charge=row.minimum_charge,
        free_seconds=row.free_seconds,
        free_inclusive=row.free_inclusive,
    )
    return RateEntry(
        row.destination, rate, tuple(row.prefixes.split()), CallClass(row.call_class) if row.call_class else None
    )


def plan_of(row: TariffPlanRow, rates: Sequence[RateRow]) -> TariffPlan:
    bands = TimeBands(
        normal_weekdays=frozenset(int(d) for d in row.normal_weekdays),
        normal_from_hour=row.normal_from_hour,
        normal_until_hour=row.normal_until_hour,
    )
    return TariffPlan(row.code, row.valid_from, [rate_entry_of(r) for r in rates], currency=row.currency, bands=bands)


async def load_plans(session: AsyncSession, tenant: str) -> list[tuple[TariffPlanRow, list[RateRow]]]:
    plans = list((await session.exec(select(TariffPlanRow).where(TariffPlanRow.tenant == tenant))).all())
    rates: dict[int, list[RateRow]] = {}
    if plans:
        query = select(RateRow).where(RateRow.tenant == tenant).order_by(col(RateRow.plan_id), col(RateRow.position))
        for rate in (await session.exec(query)).all():
            rates.setdefault(rate.plan_id, []).append(rate)
    return [(plan, rates.get(plan.id or 0, [])) for plan in plans]


class SqlRaterStore:
    """`RaterStore` on the unit of work's session."""

    def __init__(self, session: AsyncSession, cache: ContextCache) -> None:
        self.session = session
        self.cache = cache

    async def context(self, tenant: str) -> RatingContext:
        tokens: dict[str, str] = self.session.info.setdefault("rater_tokens", {})
        token = tokens.get(tenant)
        if token is None:  # read once per transaction: a batch rates against one state of the tenant
            query = select(TenantStateRow.token).where(TenantStateRow.tenant == tenant)
            token = tokens[tenant] = (await self.session.exec(query)).one_or_none() or ""
        cached = self.cache.entries.get(tenant)
        if cached is not None and cached[0] == token:
            return cached[1]
        context = await self._load(tenant)
        self.cache.entries[tenant] = (token, context)
        return context

    async def _load(self, tenant: str) -> RatingContext:
        session = self.session
        book = PlanBook()
        for plan, rates in await load_plans(session, tenant):
            book.add(plan_of(plan, rates))
        for assignment in (
            await session.exec(select(PlanAssignmentRow).where(PlanAssignmentRow.tenant == tenant))
        ).all():
            book.assign(assignment.scope, assignment.scope_id, assignment.plan_code)
        directory = {
            row.extension: entry_of(row)
            for row in (await session.exec(select(ExtensionRow).where(ExtensionRow.tenant == tenant))).all()
        }
        aliases = {
            row.number: row.extension
            for row in (await session.exec(select(AliasRow).where(AliasRow.tenant == tenant))).all()
        }
        numbering = {
            row.source_id: NumberingPlan(country_code=row.country_code, home_area_code=row.home_area_code)
            for row in (await session.exec(select(NumberingRow).where(NumberingRow.tenant == tenant))).all()
        }
        holidays = frozenset(
            row.day for row in (await session.exec(select(HolidayRow).where(HolidayRow.tenant == tenant))).all()
        )
        allowances = {
            row.line_id: Allowance(row.line_id, row.included_seconds, row.due_day, row.credit_limit, row.contract_id)
            for row in (await session.exec(select(AllowanceRow).where(AllowanceRow.tenant == tenant))).all()
        }
        return RatingContext(book, directory, aliases, numbering, holidays, allowances)

    async def known_calls(self, tenant: str, record_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(record_ids), CHUNK):
            query = select(CallRow.record_id).where(
                CallRow.tenant == tenant, col(CallRow.record_id).in_(record_ids[start : start + CHUNK])
            )
            found.update((await self.session.exec(query)).all())
        return found

    async def usage(self, tenant: str, line_id: str, cycle: tuple[date, date], included_seconds: int) -> Usage:
        usages: dict[tuple[str, str, date], tuple[Usage, date]] = self.session.info.setdefault("rater_usage", {})
        key = (tenant, line_id, cycle[0])
        if key in usages:
            return usages[key][0]
        row = await self.session.get(LineUsageRow, key)
        if row is None:
            usage = Usage(included_seconds=included_seconds)
        else:
            usage = Usage(
                included_seconds=row.included_seconds,
                used_seconds=row.used_seconds,
                spent=row.spent,
                announced={int(level) for level in row.announced.split(",") if level},
                credit_announced=row.credit_announced,
            )
        if not usages:  # the first usage of this transaction: write them all back just before it commits
            event.listen(self.session.sync_session, "before_commit", _write_usage, once=True)
        usages[key] = (usage, cycle[1])
        return usage

    async def save_allowance(self, tenant: str, allowance: Allowance) -> None:
        await save_allowance(self.session, tenant, allowance)

    async def add_calls(self, calls: Sequence[CallState]) -> set[tuple[str, str]]:
        """Insert the calls with `ON CONFLICT DO NOTHING RETURNING`, and the rating rows of those it kept.

        The unique key (tenant, record_id) decides what is new, whoever else inserts meanwhile.
        This is the consumer's hot path, so the rows go to the driver as tuples of values it
        takes as they are (`BulkInsert`), without SQLAlchemy's per-value bind processing: a few
        multi-row VALUES statements on SQLite, a binary COPY and one `INSERT … SELECT` on
        PostgreSQL (`StagedCopy`: three round trips, whatever the number of rows).
        """
        connection = await self.session.connection()
        calls_insert, ratings_insert = _bulk_inserts(connection.dialect.name)
        rows = [calls_insert.row(call_values(call)) for call in calls]
        kept: set[tuple[str, str]] = {
            (tenant, record_id) for tenant, record_id in await calls_insert.run(connection, rows)
        }
        ratings = [
            ratings_insert.row(rating_values(call, None, "rated"))
            for call in calls
            if call.status == RATED and (call.tenant, call.record_id) in kept
        ]
        await ratings_insert.run(connection, ratings)
        return kept

    async def update_calls(self, changes: Sequence[tuple[CallState, str]]) -> None:
        """Write retried or re-rated calls' new states, and a rating row for each rated one.

        Both statements are built once per process and take the calls' values as parameters, each
        sent once for the whole batch (executemany): building an `UPDATE … VALUES` of 30 columns
        and sending it for every call was most of a retry's time.
        """
        if not changes:
            return
        update, insert = _call_writes()
        connection = await self.session.connection()
        updates = [
            {"call_row_id": call.id, **dict(zip(_NEW_NAMES, _updated_values(call), strict=True))} for call, _ in changes
        ]
        await connection.execute(update, updates)
        before: dict[str, dict[str, int]] = {}  # tenant -> record -> the version each new rating follows
        for call, _ in changes:
            if call.status == RATED and call.version > 1:
                before.setdefault(call.tenant, {})[call.record_id] = call.version - 1
        previous = await self._amounts(before) if before else {}
        ratings = [
            rating_row(call, previous.get((call.tenant, call.record_id)), cause)
            for call, cause in changes
            if call.status == RATED
        ]
        if ratings:
            await connection.execute(insert, ratings)

    async def _amounts(self, versions: dict[str, dict[str, int]]) -> dict[tuple[str, str], Decimal]:
        """The amount of each (tenant, record)'s rating of the given version: one SELECT per `CHUNK` records.

        A re-rate of a month wrote one SELECT per call before; a call has a handful of versions, so
        reading all of a chunk's rows and keeping the wanted version costs less than matching pairs.
        """
        found: dict[tuple[str, str], Decimal] = {}
        for tenant, wanted in versions.items():
            records = list(wanted)
            for start in range(0, len(records), CHUNK):
                query = select(col(RatingRow.record_id), col(RatingRow.version), col(RatingRow.amount)).where(
                    RatingRow.tenant == tenant, col(RatingRow.record_id).in_(records[start : start + CHUNK])
                )
                for record_id, version, amount in (await self.session.exec(query)).all():
                    if wanted[record_id] == version:
                        found[(tenant, record_id)] = amount
        return found

    async def request_retry(self, tenant: str, waiting: Waiting | None) -> None:
        await retries.request_retry(self.session, tenant, waiting, utcnow())

    async def unrated_calls(
        self, tenant: str, after_id: int, limit: int, waiting: Waiting | None = None
    ) -> Sequence[CallState]:
        query = select(CallRow).where(CallRow.tenant == tenant, UNRATED_ONLY, col(CallRow.id) > after_id)
        if waiting is not None:
            wanted = []
            if waiting.reasons:
                wanted.append(col(CallRow.reason).in_(waiting.reasons))
            if waiting.extensions:
                wanted.append(col(CallRow.extension).in_(waiting.extensions))
            if not wanted:
                return []
            query = query.where(sa.or_(*wanted))
        query = query.order_by(col(CallRow.id)).limit(limit)
        return [state_of(row) for row in (await self.session.exec(query)).all()]

    async def calls_in_scope(self, scope: RerateScope, after_id: int, limit: int) -> Sequence[CallState]:
        query = select(CallRow).where(
            CallRow.tenant == scope.tenant,
            col(CallRow.started_at) >= scope.start,
            col(CallRow.started_at) < scope.end,
            col(CallRow.id) > after_id,
        )
        if scope.source_id:
            query = query.where(CallRow.source_id == scope.source_id)
        if scope.line:
            query = query.where(sa.or_(col(CallRow.line_id) == scope.line, col(CallRow.extension) == scope.line))
        query = query.order_by(col(CallRow.id)).limit(limit)
        return [state_of(row) for row in (await self.session.exec(query)).all()]

    async def save_line(self, tenant: str, entry: DirectoryEntry, numbers: Sequence[str], *, prune: bool) -> None:
        await save_extension(self.session, tenant, entry)
        for number in numbers:
            await save_alias(self.session, tenant, number, entry.extension)
        if prune:
            keep = ["".join(ch for ch in number if ch.isdigit()) for number in numbers]
            await self.session.exec(
                delete(AliasRow).where(
                    col(AliasRow.tenant) == tenant,
                    col(AliasRow.extension) == entry.extension,
                    col(AliasRow.number).not_in(keep),
                )
            )
            await touch(self.session, tenant)


def _write_usage(session: Session) -> None:
    """Write back the usage rows this transaction changed (one upsert each)."""
    usages: dict[tuple[str, str, date], tuple[Usage, date]] = session.info.pop("rater_usage", {})
    if not usages:
        return
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    connection = session.connection()
    for (tenant, line_id, start), (usage, end) in usages.items():
        values = {
            "cycle_end": end,
            "included_seconds": usage.included_seconds,
            "used_seconds": usage.used_seconds,
            "spent": usage.spent,
            "announced": ",".join(str(level) for level in sorted(usage.announced)),
            "credit_announced": usage.credit_announced,
        }
        statement = (
            insert(LineUsageRow)
            .values(tenant=tenant, line_id=line_id, cycle_start=start, **values)
            .on_conflict_do_update(index_elements=["tenant", "line_id", "cycle_start"], set_=values)
        )
        connection.execute(statement)


async def save_allowance(session: AsyncSession, tenant: str, allowance: Allowance) -> None:
    """Create or update a line's allowance; `included_seconds` < 0 keeps the stored value (line events)."""
    existing = await session.get(AllowanceRow, (tenant, allowance.line_id))
    if existing is None:
        existing = AllowanceRow(
            tenant=tenant,
            line_id=allowance.line_id,
            included_seconds=max(allowance.included_seconds, 0),
            due_day=allowance.due_day,
            updated_at=utcnow(),
        )
    elif allowance.included_seconds >= 0:
        existing.included_seconds = allowance.included_seconds
    existing.due_day = allowance.due_day
    existing.credit_limit = allowance.credit_limit
    existing.contract_id = allowance.contract_id or existing.contract_id
    existing.updated_at = utcnow()
    session.add(existing)
    await session.flush()
    await touch(session, tenant)


def rating_row(call: CallState, previous: Decimal | None, cause: str) -> dict[str, Any]:
    return dict(zip(RATING_FIELDS, rating_values(call, previous, cause), strict=True))


def rating_values(call: CallState, previous: Decimal | None, cause: str) -> tuple[Any, ...]:
    """A rating row's values, in `RATING_FIELDS` order."""
    assert call.amount is not None and call.rated_at is not None
    return (
        call.tenant,
        call.record_id,
        call.version,
        call.amount,
        previous,
        call.cost_amount,
        call.plan,
        call.rate,
        cause,
        call.rated_at,
    )


def state_of(row: CallRow) -> CallState:
    return CallState(**{name: getattr(row, name) for name in CALL_FIELDS})


async def save_extension(session: AsyncSession, tenant: str, entry: DirectoryEntry) -> None:
    """Create or replace a directory entry (fields left None by a line event keep their value)."""
    existing = await session.get(ExtensionRow, (tenant, entry.extension))
    classes = ",".join(sorted(c.value for c in entry.allowed_classes)) if entry.allowed_classes is not None else None
    if existing is None:
        session.add(
            ExtensionRow(
                tenant=tenant,
                extension=entry.extension,
                line_id=entry.line_id,
                customer_id=entry.customer_id,
                contract_id=entry.contract_id,
                cost_centre=entry.cost_centre,
                department=entry.department,
                allowed_classes=classes,
                updated_at=utcnow(),
            )
        )
    else:
        for name in ("line_id", "customer_id", "contract_id", "cost_centre", "department"):
            value = getattr(entry, name)
            if value is not None:
                setattr(existing, name, value)
        if entry.allowed_classes is not None:
            existing.allowed_classes = classes
        existing.updated_at = utcnow()
    await session.flush()
    await touch(session, tenant)


async def save_alias(session: AsyncSession, tenant: str, number: str, extension: str) -> None:
    digits = "".join(ch for ch in number if ch.isdigit())
    statement = (
        _insert(session)(AliasRow)
        .values(tenant=tenant, number=digits, extension=extension)
        .on_conflict_do_update(index_elements=["tenant", "number"], set_={"extension": extension})
    )
    await _execute(session, statement)
    await touch(session, tenant)


async def save_plan_version(
    session: AsyncSession,
    tenant: str,
    code: str,
    valid_from: datetime,
    entries: Sequence[RateEntry],
    *,
    currency: str = "BRL",
    bands: TimeBands | None = None,
) -> TariffPlanRow:
    """Store a plan version, replacing the rates of a version with the same activation."""
    bands = bands or TimeBands()
    existing = (
        await session.exec(
            select(TariffPlanRow).where(
                TariffPlanRow.tenant == tenant, TariffPlanRow.code == code, TariffPlanRow.valid_from == valid_from
            )
        )
    ).one_or_none()
    if existing is not None:
        await session.exec(delete(RateRow).where(col(RateRow.plan_id) == existing.id))
        plan = existing
    else:
        plan = TariffPlanRow(
            tenant=tenant,
            code=code,
            valid_from=valid_from,
            currency="",
            normal_weekdays="",
            normal_from_hour=0,
            normal_until_hour=0,
            created_at=utcnow(),
        )
    plan.currency = currency
    plan.normal_weekdays = "".join(str(d) for d in sorted(bands.normal_weekdays))
    plan.normal_from_hour = bands.normal_from_hour
    plan.normal_until_hour = bands.normal_until_hour
    session.add(plan)
    await session.flush()
    assert plan.id is not None
    rows = [
        {
            "tenant": tenant,
            "plan_id": plan.id,
            "position": position,
            "destination": entry.destination,
            "prefixes": " ".join(entry.prefixes),
            "call_class": entry.call_class.value if entry.call_class else None,
            "price_per_minute": entry.rate.price_per_minute,
            "reduced_price_per_minute": entry.rate.reduced_price_per_minute,
            "connect_fee": entry.rate.connect_fee,
            "cost_per_minute": entry.rate.cost_per_minute,
            "first_increment": entry.rate.first_increment,
            "next_increment": entry.rate.next_increment,
            "minimum_charge": entry.rate.minimum_charge,
            "free_seconds": entry.rate.free_seconds,
            "free_inclusive": entry.rate.free_inclusive,
        }
        for position, entry in enumerate(entries)
    ]
    if rows:
        await (await session.connection()).execute(sa.insert(RateRow), rows)
    await touch(session, tenant)
    return plan


async def assign_plan(session: AsyncSession, tenant: str, scope: str, scope_id: str, code: str) -> None:
    statement = (
        _insert(session)(PlanAssignmentRow)
        .values(tenant=tenant, scope=scope, scope_id=scope_id, plan_code=code)
        .on_conflict_do_update(index_elements=["tenant", "scope", "scope_id"], set_={"plan_code": code})
    )
    await _execute(session, statement)
    await touch(session, tenant)


async def save_holiday(session: AsyncSession, tenant: str, day: date, name: str) -> None:
    statement = (
        _insert(session)(HolidayRow)
        .values(tenant=tenant, day=day, name=name)
        .on_conflict_do_update(index_elements=["tenant", "day"], set_={"name": name})
    )
    await _execute(session, statement)
    await touch(session, tenant)


async def save_numbering(session: AsyncSession, tenant: str, source_id: str, plan: NumberingPlan) -> None:
    values = {"country_code": plan.country_code, "home_area_code": plan.home_area_code}
    statement = (
        _insert(session)(NumberingRow)
        .values(tenant=tenant, source_id=source_id, **values)
        .on_conflict_do_update(index_elements=["tenant", "source_id"], set_=values)
    )
    await _execute(session, statement)
    await touch(session, tenant)


async def _delete(session: AsyncSession, tenant: str, statement: Any) -> bool:
    """Run a DELETE; when it removed something, mark the tenant's context as changed."""
    removed = (await _execute(session, statement)).rowcount > 0
    if removed:
        await touch(session, tenant)
    return bool(removed)


async def delete_extension(session: AsyncSession, tenant: str, extension: str) -> bool:
    """Remove a directory entry and the aliases that point to it; calls already rated keep their rating."""
    await _execute(
        session, sa.delete(AliasRow).where(col(AliasRow.tenant) == tenant, col(AliasRow.extension) == extension)
    )
    return await _delete(
        session,
        tenant,
        sa.delete(ExtensionRow).where(col(ExtensionRow.tenant) == tenant, col(ExtensionRow.extension) == extension),
    )


async def delete_alias(session: AsyncSession, tenant: str, number: str) -> bool:
    digits = "".join(ch for ch in number if ch.isdigit())
    return await _delete(
        session, tenant, sa.delete(AliasRow).where(col(AliasRow.tenant) == tenant, col(AliasRow.number) == digits)
    )


async def delete_plan_version(session: AsyncSession, tenant: str, code: str, valid_from: datetime) -> bool:
    """Remove one version of a plan and its rates; calls it priced keep their rating until re-rated."""
    plan_id = (
        await session.exec(
            select(TariffPlanRow.id).where(
                TariffPlanRow.tenant == tenant, TariffPlanRow.code == code, TariffPlanRow.valid_from == valid_from
            )
        )
    ).one_or_none()
    if plan_id is None:
        return False
    await _execute(session, sa.delete(RateRow).where(col(RateRow.plan_id) == plan_id))
    return await _delete(session, tenant, sa.delete(TariffPlanRow).where(col(TariffPlanRow.id) == plan_id))


async def delete_assignment(session: AsyncSession, tenant: str, scope: str, scope_id: str) -> bool:
    return await _delete(
        session,
        tenant,
        sa.delete(PlanAssignmentRow).where(
            col(PlanAssignmentRow.tenant) == tenant,
            col(PlanAssignmentRow.scope) == scope,
            col(PlanAssignmentRow.scope_id) == scope_id,
        ),
    )


async def delete_numbering(session: AsyncSession, tenant: str, source_id: str) -> bool:
    """Remove a source's numbering context: the source falls back to the tenant's '*', '*' to the built-in one."""
    return await _delete(
        session,
        tenant,
        sa.delete(NumberingRow).where(col(NumberingRow.tenant) == tenant, col(NumberingRow.source_id) == source_id),
    )


async def delete_holiday(session: AsyncSession, tenant: str, day: date) -> bool:
    return await _delete(
        session, tenant, sa.delete(HolidayRow).where(col(HolidayRow.tenant) == tenant, col(HolidayRow.day) == day)
    )
