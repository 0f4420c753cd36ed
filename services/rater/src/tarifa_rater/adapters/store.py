"""The SQL store: the handlers' `RaterStore` port on SQLModel tables, and the writes of the API and CLI.

A tenant's rating context (plans, directory, numbering, holidays) is cached per process and
checked against the tenant's state token on every use: any change of tariffs or directory, by
any process, writes a new random token in the same transaction, so a cache is never stale
after a commit and never trusts a rolled-back change.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_common.events import utcnow
from tarifa_rater.adapters import retries
from tarifa_rater.adapters.tables import (
    AliasRow,
    AllowanceRow,
    CallRow,
    ExtensionRow,
    HolidayRow,
    LineUsageRow,
    NumberingRow,
    PlanAssignmentRow,
    RateRow,
    RatingRow,
    TariffPlanRow,
    TenantStateRow,
)
from tarifa_rater.domain.allowances import Usage
from tarifa_rater.domain.numbering import CallClass, NumberingPlan
from tarifa_rater.domain.pricing import Rate, TimeBands
from tarifa_rater.domain.rating import DirectoryEntry
from tarifa_rater.domain.tariffs import PlanBook, RateEntry, TariffPlan
from tarifa_rater.handlers import RATED, UNRATED, Allowance, CallState, RatingContext, RerateScope, Waiting

CALL_FIELDS = tuple(f.name for f in dataclasses.fields(CallState))
NEW_CALL_FIELDS = tuple(name for name in CALL_FIELDS if name != "id")
CHUNK = 1000  # rows per statement: well under SQLite's and asyncpg's bound-parameter limits


def call_row(call: CallState) -> dict[str, Any]:
    return {name: getattr(call, name) for name in NEW_CALL_FIELDS}


class ContextCache:
    """Rating contexts by tenant, each with the state token it was loaded under."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[str, RatingContext]] = {}


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def _execute(session: AsyncSession, statement: Any) -> Any:
    return await (await session.connection()).execute(statement)


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
        """One multi-row INSERT … ON CONFLICT DO NOTHING RETURNING per chunk, and the rating rows of what it kept.

        The unique key (tenant, record_id) decides what is new, whoever else inserts meanwhile;
        executemany form, so SQLAlchemy compiles the statement once and batches the rows.
        """
        connection = await self.session.connection()
        statement = (
            _insert(self.session)(CallRow)
            .on_conflict_do_nothing(index_elements=["tenant", "record_id"])
            .returning(col(CallRow.tenant), col(CallRow.record_id))
        )
        kept: set[tuple[str, str]] = set()
        for start in range(0, len(calls), CHUNK):
            rows = [call_row(call) for call in calls[start : start + CHUNK]]
            result = await connection.execute(statement, rows)
            kept.update((tenant, record_id) for tenant, record_id in result.all())
        ratings = [
            rating_row(call, None, "rated")
            for call in calls
            if call.status == RATED and (call.tenant, call.record_id) in kept
        ]
        for start in range(0, len(ratings), CHUNK):
            await connection.execute(sa.insert(RatingRow), ratings[start : start + CHUNK])
        return kept

    async def update_call(self, call: CallState, cause: str) -> None:
        values = {name: getattr(call, name) for name in CALL_FIELDS if name not in ("id", "cdr", "tenant", "record_id")}
        await _execute(self.session, sa.update(CallRow).where(col(CallRow.id) == call.id).values(values))
        if call.status == RATED:
            previous = None
            if call.version > 1:
                query = select(col(RatingRow.amount)).where(
                    RatingRow.tenant == call.tenant,
                    RatingRow.record_id == call.record_id,
                    RatingRow.version == call.version - 1,
                )
                previous = (await self.session.exec(query)).one_or_none()
            await self._add_rating(call, previous, cause)

    async def request_retry(self, tenant: str, waiting: Waiting | None) -> None:
        await retries.request_retry(self.session, tenant, waiting, utcnow())

    async def _add_rating(self, call: CallState, previous: Decimal | None, cause: str) -> None:
        await _execute(self.session, sa.insert(RatingRow).values(rating_row(call, previous, cause)))

    async def unrated_calls(
        self, tenant: str, after_id: int, limit: int, waiting: Waiting | None = None
    ) -> Sequence[CallState]:
        query = select(CallRow).where(CallRow.tenant == tenant, CallRow.status == UNRATED, col(CallRow.id) > after_id)
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
    assert call.amount is not None and call.rated_at is not None
    return {
        "tenant": call.tenant,
        "record_id": call.record_id,
        "version": call.version,
        "amount": call.amount,
        "previous_amount": previous,
        "cost_amount": call.cost_amount,
        "plan": call.plan,
        "rate": call.rate,
        "cause": cause,
        "rated_at": call.rated_at,
    }


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
