"""The one place that wires the voip-summit: its runtime, its subscriptions, its adapters."""

from pathlib import Path

from tarifa_common.kafka import Subscription
from tarifa_common.runtime import ServiceRuntime
from tarifa_voip_summit.config import VoipSummitSettings

MIGRATIONS = Path(__file__).parent / "migrations"

# A skeleton until its issue lands: it joins its group and reads its topics, handling no type yet.
SUBSCRIPTIONS = (Subscription(group="voip-summit", topics=("contract.status", "line.usage"), handlers={}),)


def bootstrap(settings: VoipSummitSettings) -> ServiceRuntime:
    return ServiceRuntime(settings, migrations=MIGRATIONS, subscriptions=SUBSCRIPTIONS)
