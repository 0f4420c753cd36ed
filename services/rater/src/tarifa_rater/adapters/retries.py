"""Queued retries of waiting calls: the request (in the change's transaction), the next batch due, progress.

A change that can make waiting calls ratable (a tariff, an assignment, an extension, an alias, a
numbering context, a line event) writes or merges its tenant's `rater_retry` row in its own
transaction; the runtime's retry loop works the rows off in batches, one transaction each, that
rate calls, publish through the outbox and advance the row's cursor together. A crash loses at
most the batch in hand, which rolls back whole: the row still says where to resume.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tarifa_rater.adapters.tables import UNRATED_ONLY, CallRow, RetryRow
from tarifa_rater.handlers import RetryChunk, Waiting, merge_waiting

WAITING, RUNNING, DONE, FAILED = "waiting", "running", "done", "failed"
MAX_ATTEMPTS = 5  # then the retry is `failed` (and alerted) until the next change queues it again


def waiting_of(row: RetryRow) -> Waiting | None:
    if row.every_call:
        return None
    return Waiting(reasons=tuple(row.reasons.split()), extensions=tuple(row.extensions.split()))


def _set_waiting(row: RetryRow, waiting: Waiting | None) -> None:
    row.every_call = waiting is None
    row.reasons = " ".join(waiting.reasons) if waiting is not None else ""
    row.extensions = " ".join(waiting.extensions) if waiting is not None else ""


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def request_retry(session: AsyncSession, tenant: str, waiting: Waiting | None, now: datetime) -> RetryRow:
    """Queue the tenant's retry, or merge `waiting` into the one queued or running (its scan starts over).

    Starting over is what makes merging safe: calls the running scan already passed may be
    ratable now. Calls it rated are no longer waiting, so the second pass skips them.
    """
    blank = {
        "tenant": tenant,
        "state": DONE,
        "reasons": "",
        "extensions": "",
        "every_call": False,
        "after_id": 0,
        "requests": 0,
        "examined": 0,
        "rated": 0,
        "attempts": 0,
        "alerted": False,
        "requested_at": now,
        "worked_at": now,
    }
    await (await session.connection()).execute(
        _insert(session)(RetryRow).values(**blank).on_conflict_do_nothing(index_elements=["tenant"])
    )
    # FOR UPDATE (PostgreSQL): a batch in progress finishes before the merge, never interleaves with it.
    query = select(RetryRow).where(RetryRow.tenant == tenant).with_for_update()
    row = (await session.exec(query.execution_options(populate_existing=True))).one()
    if row.state in (DONE, FAILED):  # a new round
        _set_waiting(row, waiting)
        row.state, row.requests, row.examined, row.rated = WAITING, 1, 0, 0
        row.requested_at, row.worked_at, row.finished_at = now, now, None
    else:
        _set_waiting(row, merge_waiting(waiting_of(row), waiting))
        row.requests += 1
    row.after_id, row.attempts, row.retry_at, row.error = 0, 0, None, None
    session.add(row)
    await session.flush()
    return row


async def next_due(session: AsyncSession, now: datetime, tenant: str | None = None) -> RetryRow | None:
    """The retry to work next (the least recently worked that is due), locked for this transaction.

    SKIP LOCKED lets two rater processes on PostgreSQL work two tenants at once; SQLite runs one
    transaction at a time anyway.
    """
    due = [
        col(RetryRow.state).in_((WAITING, RUNNING)),
        sa.or_(col(RetryRow.retry_at).is_(None), col(RetryRow.retry_at) <= now),
    ]
    if tenant is not None:
        due.append(col(RetryRow.tenant) == tenant)
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        # Nothing due (the common case, every poll): answer without a write transaction, which
        # would compete with the consumer for SQLite's lock every `retry_poll_seconds`. Only a
        # column is read here, so the row read under the lock below is not an identity loaded before it.
        if (await session.exec(select(RetryRow.tenant).where(*due).limit(1))).first() is None:
            return None
        # The driver opens SQLite's transaction at the first write, so reads before it see whatever is
        # committed then: two processes on one file (the service and the CLI) would read the same waiting
        # calls. A write that changes nothing takes the write lock first; the other process waits for it.
        await (await session.connection()).execute(sa.update(RetryRow).where(sa.false()).values(state=RetryRow.state))
    query = select(RetryRow).where(*due).order_by(col(RetryRow.worked_at)).limit(1).with_for_update(skip_locked=True)
    return (await session.exec(query)).one_or_none()


def advance(row: RetryRow, chunk: RetryChunk, limit: int, now: datetime) -> bool:
    """Record a batch done; return True when it finished the round (fewer calls than the limit were left)."""
    row.after_id = chunk.last_id
    row.examined += chunk.examined
    row.rated += chunk.rated
    row.attempts, row.error, row.retry_at, row.worked_at = 0, None, None, now
    finished = chunk.examined < limit
    row.state = DONE if finished else RUNNING
    if finished:
        row.finished_at = now
    return finished


def record_failure(row: RetryRow, error: str, now: datetime) -> bool:
    """Count a failed batch: back off (2^attempts seconds), and after MAX_ATTEMPTS give up; True when it did."""
    row.attempts += 1
    row.error = error[:2000]
    row.worked_at = now
    row.retry_at = now + timedelta(seconds=2**row.attempts)
    if row.attempts >= MAX_ATTEMPTS:
        row.state, row.retry_at, row.finished_at = FAILED, None, now
        return True
    return False


async def waiting_calls(session: AsyncSession, tenant: str) -> int:
    """How many of the tenant's calls wait (counted on `ix_rater_call_waiting`, which holds only those)."""
    query = select(func.count()).select_from(CallRow).where(CallRow.tenant == tenant, UNRATED_ONLY)
    return int((await session.exec(query)).one())
