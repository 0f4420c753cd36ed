"""The one place that wires the invoicer: its runtime, its subscriptions, its adapters."""

from pathlib import Path

from tarifa_common import contracts
from tarifa_common.events import Event
from tarifa_common.kafka import Subscription
from tarifa_common.runtime import ServiceRuntime
from tarifa_common.unit_of_work import UnitOfWork
from tarifa_invoicer import handlers
from tarifa_invoicer.adapters import delivery, mailing, runs, tables  # noqa: F401 - registers the tables on SQLModel's metadata
from tarifa_invoicer.adapters.backlog import GROUP
from tarifa_invoicer.adapters.store import SqlStore
from tarifa_invoicer.config import InvoicerSettings

MIGRATIONS = Path(__file__).parent / "migrations"


async def on_rated_call(event: Event, uow: UnitOfWork) -> None:
    await handlers.record_rated_call(event, SqlStore(uow))


def subscriptions(group: str = GROUP) -> tuple[Subscription, ...]:
    return (
        Subscription(group=group, topics=("cdr.rated", "line.events"), handlers={contracts.CDR_RATED: on_rated_call}),
    )


def bootstrap(settings: InvoicerSettings) -> ServiceRuntime:
    return ServiceRuntime(
        settings,
        migrations=MIGRATIONS,
        subscriptions=subscriptions(),
        background=[delivery.delivery_loop, mailing.mailing_loop, runs.billing_scheduler],
    )
