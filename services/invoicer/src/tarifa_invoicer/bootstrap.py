"""The one place that wires the invoicer: its runtime, its subscriptions, its adapters."""

from pathlib import Path

from tarifa_common.kafka import Subscription
from tarifa_common.runtime import ServiceRuntime
from tarifa_invoicer.config import InvoicerSettings

MIGRATIONS = Path(__file__).parent / "migrations"

# A skeleton until its issue lands: it joins its group and reads its topics, handling no type yet.
SUBSCRIPTIONS = (Subscription(group="invoicer", topics=("cdr.rated", "line.events"), handlers={}),)


def bootstrap(settings: InvoicerSettings) -> ServiceRuntime:
    return ServiceRuntime(settings, migrations=MIGRATIONS, subscriptions=SUBSCRIPTIONS)
