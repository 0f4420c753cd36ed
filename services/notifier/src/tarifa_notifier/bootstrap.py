"""The one place that wires the notifier: its runtime, its subscriptions, its adapters."""

from pathlib import Path

from tarifa_common.kafka import Subscription
from tarifa_common.runtime import ServiceRuntime
from tarifa_notifier.config import NotifierSettings

MIGRATIONS = Path(__file__).parent / "migrations"

# A skeleton until its issue lands: it joins its group and reads its topics, handling no type yet.
SUBSCRIPTIONS = (
    Subscription(
        group="notifier", topics=("alert.events", "service.heartbeat", "invoice.issued", "line.usage"), handlers={}
    ),
)


def bootstrap(settings: NotifierSettings) -> ServiceRuntime:
    return ServiceRuntime(settings, migrations=MIGRATIONS, subscriptions=SUBSCRIPTIONS)
