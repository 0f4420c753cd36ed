"""The one place that wires the rater: its runtime, its subscriptions, its adapters."""

from pathlib import Path

from tarifa_common.kafka import Subscription
from tarifa_common.runtime import ServiceRuntime
from tarifa_rater.config import RaterSettings

MIGRATIONS = Path(__file__).parent / "migrations"

# A skeleton until its issue lands: it joins its group and reads its topics, handling no type yet.
SUBSCRIPTIONS = (Subscription(group="rater", topics=("cdr.raw", "line.events"), handlers={}),)


def bootstrap(settings: RaterSettings) -> ServiceRuntime:
    return ServiceRuntime(settings, migrations=MIGRATIONS, subscriptions=SUBSCRIPTIONS)
