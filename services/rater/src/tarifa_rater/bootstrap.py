"""The one place that wires the rater: its runtime, its subscriptions, its adapters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from opentelemetry import propagate

from tarifa_common import alerts, contracts, topics
from tarifa_common.events import Event, utcnow
from tarifa_common.kafka import Subscription
from tarifa_common.runtime import BackgroundTask, ServiceRuntime
from tarifa_common.unit_of_work import UnitOfWork
from tarifa_rater import handlers
from tarifa_rater.adapters import retries
from tarifa_rater.adapters.store import ContextCache, SqlRaterStore
from tarifa_rater.adapters.tables import RetryRow
from tarifa_rater.config import RaterSettings
from tarifa_rater.domain.numbering import NumberingPlan

MIGRATIONS = Path(__file__).parent / "migrations"
GROUP = "rater"
log = logging.getLogger(__name__)


@dataclass(slots=True)
class Rater:
    """What the API and the CLI share with the consumer: the runtime, the cache, the default numbering."""

    runtime: ServiceRuntime
    cache: ContextCache
    numbering: NumberingPlan

    chunk_size: int = 500
    retry_chunk_size: int = 500
    retry_poll_seconds: float = 1.0
    retry_wanted: asyncio.Event = field(default_factory=asyncio.Event)

    def store(self, uow: UnitOfWork) -> SqlRaterStore:
        return SqlRaterStore(uow.session, self.cache)

    async def rerate(
        self, scope: handlers.RerateScope, on_progress: Callable[[handlers.RerateProgress], None] | None = None
    ) -> handlers.RerateProgress:
        """Re-rate a scope in chunks, one transaction each, reporting progress after each chunk."""
        total = handlers.RerateProgress()
        while True:
            async with self.runtime.units() as uow:
                chunk = await handlers.rerate_chunk(
                    uow, self.store(uow), scope, self.numbering, total.last_id, self.chunk_size
                )
            total.examined += chunk.examined
            total.changed += chunk.changed
            total.newly_rated += chunk.newly_rated
            total.still_unrated += chunk.still_unrated
            total.difference += chunk.difference
            total.last_id = chunk.last_id
            if on_progress is not None:
                on_progress(total)
            if chunk.examined < self.chunk_size:
                return total

    async def request_retry(self, uow: UnitOfWork, tenant: str, waiting: handlers.Waiting | None) -> RetryRow:
        """Queue (or merge) the tenant's retry in this transaction; call `wake_retries` after it commits."""
        return await retries.request_retry(uow.session, tenant, waiting, utcnow())

    def wake_retries(self) -> None:
        """Tell this process's retry loop that a request committed (other processes find it by polling)."""
        self.retry_wanted.set()

    async def work_retry(self, tenant: str | None = None, *, now: datetime | None = None) -> RetryRow | None:
        """Work one batch of the retry due next (of `tenant` only, if given), in its own transaction.

        Returns the retry's row as the batch left it, or None when none is due. A batch that fails
        rolls back whole (no call rated, nothing published, the cursor where it was) and is counted
        on the row, which backs off and, after `retries.MAX_ATTEMPTS`, fails and raises an alert.
        `now`: the clock, for tests of the back-off.
        """
        now = now or utcnow()
        due: str | None = None
        try:
            async with self.runtime.units() as uow:
                row = await retries.next_due(uow.session, now, tenant)
                if row is None:
                    return None
                due = row.tenant
                chunk = await handlers.retry_chunk(
                    uow,
                    self.store(uow),
                    row.tenant,
                    self.numbering,
                    retries.waiting_of(row),
                    row.after_id,
                    self.retry_chunk_size,
                )
                if retries.advance(row, chunk, self.retry_chunk_size, now):
                    log.info("waiting calls retried", extra={"tenant": row.tenant, "rated": row.rated})
                    if row.alerted:
                        row.alerted = False
                        uow.emit(*retry_resolved(row.tenant))
                uow.session.add(row)
            return row
        except Exception as error:
            if due is None:
                raise
            log.warning("retrying waiting calls failed", extra={"tenant": due}, exc_info=True)
            return await self._count_failure(due, f"{type(error).__name__}: {error}", now)

    async def _count_failure(self, tenant: str, error: str, now: datetime) -> RetryRow | None:
        async with self.runtime.units() as uow:
            row = await uow.session.get(RetryRow, tenant, with_for_update=True)
            if row is None or row.state not in (retries.WAITING, retries.RUNNING):
                return row
            if retries.record_failure(row, error, now) and not row.alerted:
                row.alerted = True
                uow.emit(*retry_failed(row))
            uow.session.add(row)
        return row

    async def work_off_retries(self) -> None:
        """The runtime's retry loop: batch after batch while one is due, else wait for a request or the poll."""
        while True:
            self.retry_wanted.clear()
            try:
                busy = await self.work_retry() is not None
            except Exception:  # the database is away: try again after the poll
                log.exception("retry loop could not read the queue")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.retry_wanted.wait(), self.retry_poll_seconds)


def retry_fingerprint(tenant: str) -> str:
    return f"rater/retry-failed/{tenant}"


def retry_failed(row: RetryRow) -> tuple[Event, str, str]:
    alert = alerts.AlertRaised(
        fingerprint=retry_fingerprint(row.tenant),
        severity=alerts.Severity.IMPORTANT,
        object=alerts.AlertObject(kind="tenant", id=row.tenant),
        summary=(
            f"Waiting calls of {row.tenant} could not be retried ({row.attempts} attempts): {row.error}."
            " Fix the cause, then load a tariff or an extension again to queue a new retry"
        ),
        details={"rated_so_far": row.rated, "after_id": row.after_id},
    )
    return alerts.raised(row.tenant, handlers.SERVICE, alert), topics.ALERT_EVENTS.name, alert.fingerprint


def retry_resolved(tenant: str) -> tuple[Event, str, str]:
    alert = alerts.AlertResolved(
        fingerprint=retry_fingerprint(tenant),
        object=alerts.AlertObject(kind="tenant", id=tenant),
        summary=f"Waiting calls of {tenant} retried",
    )
    return alerts.resolved(tenant, handlers.SERVICE, alert), topics.ALERT_EVENTS.name, alert.fingerprint


def retry_loop(rater_ref: list[Rater]) -> BackgroundTask:
    async def retry_waiting_calls(_: ServiceRuntime) -> None:
        await rater_ref[0].work_off_retries()

    return retry_waiting_calls


def subscriptions(rater_ref: list[Rater]) -> tuple[Subscription, ...]:
    """The rater's one consumer group; handlers reach the rater built after the runtime."""

    async def rate(events: list[Event], uow: UnitOfWork) -> None:
        rater = rater_ref[0]
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the batch's span: every event it publishes carries it
        await handlers.rate_collected_cdrs(
            events, uow, rater.store(uow), rater.numbering, trace=carrier.get("traceparent")
        )

    async def line(event: Event, uow: UnitOfWork) -> None:
        rater = rater_ref[0]
        await handlers.apply_line_change(event, uow, rater.store(uow), rater.numbering)

    line_handlers = {contracts.line_event_type(kind): line for kind in contracts.LineEventKind}
    return (
        Subscription(
            group=GROUP,
            topics=("cdr.raw", "line.events"),
            handlers=line_handlers,
            batch_handlers={contracts.CDR_COLLECTED: rate},
            # A collected CDR is kept once by its (tenant, record id) key in rater_call (the batch
            # handler inserts ON CONFLICT DO NOTHING and rates only what it inserted): no inbox row.
            deduplicated_by_handler=frozenset({contracts.CDR_COLLECTED}),
        ),
    )


def build(settings: RaterSettings, *, consume: bool = True) -> Rater:
    """The rater of one process; `consume=False` for the CLI (no consumer group join, no retry loop)."""
    ref: list[Rater] = []
    runtime = ServiceRuntime(
        settings,
        migrations=MIGRATIONS,
        subscriptions=subscriptions(ref) if consume else (),
        background=[retry_loop(ref)] if consume else [],
    )
    numbering = NumberingPlan(country_code=settings.country_code, home_area_code=settings.home_area_code)
    rater = Rater(
        runtime,
        ContextCache(),
        numbering,
        settings.rerate_chunk_size,
        retry_chunk_size=settings.retry_chunk_size,
        retry_poll_seconds=settings.retry_poll_seconds,
    )
    ref.append(rater)
    return rater


def bootstrap(settings: RaterSettings) -> ServiceRuntime:
    return build(settings).runtime
