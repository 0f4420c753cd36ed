"""The one place that wires the rater: its runtime, its subscriptions, its adapters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import propagate

from tarifa_common import contracts
from tarifa_common.events import Event
from tarifa_common.kafka import Subscription
from tarifa_common.runtime import ServiceRuntime
from tarifa_common.unit_of_work import UnitOfWork
from tarifa_rater import handlers
from tarifa_rater.adapters.store import ContextCache, SqlRaterStore
from tarifa_rater.config import RaterSettings
from tarifa_rater.domain.numbering import NumberingPlan

MIGRATIONS = Path(__file__).parent / "migrations"
GROUP = "rater"


@dataclass(slots=True)
class Rater:
    """What the API and the CLI share with the consumer: the runtime, the cache, the default numbering."""

    runtime: ServiceRuntime
    cache: ContextCache
    numbering: NumberingPlan

    chunk_size: int = 500

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

    async def retry_unrated(self, uow: UnitOfWork, tenant: str, waiting: handlers.Waiting | None = None) -> int:
        return await handlers.retry_unrated(uow, self.store(uow), tenant, self.numbering, waiting)


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
    """The rater of one process; `consume=False` for the CLI (no consumer group join)."""
    ref: list[Rater] = []
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, subscriptions=subscriptions(ref) if consume else ())
    numbering = NumberingPlan(country_code=settings.country_code, home_area_code=settings.home_area_code)
    rater = Rater(runtime, ContextCache(), numbering, settings.rerate_chunk_size)
    ref.append(rater)
    return rater


def bootstrap(settings: RaterSettings) -> ServiceRuntime:
    return build(settings).runtime
