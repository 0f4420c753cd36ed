"""The one place that wires the rater: its runtime, its subscriptions, its adapters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

    def store(self, uow: UnitOfWork) -> SqlRaterStore:
        return SqlRaterStore(uow.session, self.cache)


def subscriptions(rater_ref: list[Rater]) -> tuple[Subscription, ...]:
    """The rater's one consumer group; handlers reach the rater built after the runtime."""

    async def rate(event: Event, uow: UnitOfWork) -> None:
        rater = rater_ref[0]
        await handlers.rate_collected_cdr(event, uow, rater.store(uow), rater.numbering)

    async def line(event: Event, uow: UnitOfWork) -> None:
        rater = rater_ref[0]
        await handlers.apply_line_change(event, uow, rater.store(uow), rater.numbering)

    line_handlers = {contracts.line_event_type(kind): line for kind in contracts.LineEventKind}
    return (
        Subscription(
            group=GROUP,
            topics=("cdr.raw", "line.events"),
            handlers={contracts.CDR_COLLECTED: rate, **line_handlers},
        ),
    )


def build(settings: RaterSettings, *, consume: bool = True) -> Rater:
    """The rater of one process; `consume=False` for the CLI (no consumer group join)."""
    ref: list[Rater] = []
    runtime = ServiceRuntime(settings, migrations=MIGRATIONS, subscriptions=subscriptions(ref) if consume else ())
    numbering = NumberingPlan(country_code=settings.country_code, home_area_code=settings.home_area_code)
    rater = Rater(runtime, ContextCache(), numbering)
    ref.append(rater)
    return rater


def bootstrap(settings: RaterSettings) -> ServiceRuntime:
    return build(settings).runtime
